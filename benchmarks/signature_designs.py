"""Two ways for the contract to hold the aggregator to the clients' signatures, side by side.

* ``FedLedger`` (the one fedledger uses): posted commitments are checked for membership,
  uniqueness and sample count, and their signatures only on demand: anyone can prove a bad one
  (``proveBadSignature``), which halts the ledger.
* ``FedLedgerVerified`` (benchmarks/contracts): the same contract, but ``postCommitments``
  recovers every signature on-chain and reverts the batch on a bad one.

Both record the same rounds (the script checks that their events agree); it prints gas and
py-evm time per posted commitment, and the cost of one fraud proof, at the given clients per
round. Run with an idle machine:

    .venv/bin/python benchmarks/signature_designs.py [--clients 100] [--rounds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_abi import encode

from fedledger.ledger.chain import Chain
from fedledger.ledger.contract import (
    PARAMS_ABI,
    FedLedgerContract,
    LedgerParams,
    pack_addresses,
    pack_commitments,
    pack_records,
)
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import Commitment, sign_commitment

ROOT = Path(__file__).resolve().parents[1]


def measure(art: dict[str, Any], *, clients: int, rounds: int) -> dict[str, Any]:
    admin = derive_account(seed=1, role="deployer")
    agg = derive_account(seed=1, role="aggregator")
    keys = [derive_account(seed=1, role="client", index=i) for i in range(clients)]
    chain = Chain.embedded_chain(funded=[admin.address, agg.address], nonces={admin.address: 7})
    h0 = hashlib.sha256(b"model").digest()
    params = LedgerParams(
        config_hash=bytes(32),
        initial_model_hash=h0,
        selection_salt=bytes(32),
        aggregator=agg.address,
        clients_per_round=clients,
        committee_size=0,
        max_flags=0,
        submission_window=1,
        round_timeout=10,
    )
    data = art["bytecode"] + encode([PARAMS_ABI], [params.as_tuple()]).hex()
    receipt = chain.send(admin, {"data": data, "value": 0}, gas=8_000_000, label="deploy")
    c = FedLedgerContract(chain, receipt["contractAddress"])
    # the wrapper's gas per registration fits FedLedger; FedLedgerVerified also stores each
    # address, so both get the same, larger limit here
    reg = c.contract.functions.registerClients(pack_addresses([k.address for k in keys]))
    c._send(admin, reg, gas=100_000 + 60_000 * clients, label="registerClients", round=None)
    base, gas, secs = h0, [], []
    for rnd in range(rounds):
        c.open_round(agg, round=rnd, base_model_hash=base, selected=list(range(clients)))
        signed = [
            sign_commitment(
                Commitment(
                    round=rnd,
                    base_model_hash=base,
                    update_hash=hashlib.sha256(f"{i}:{rnd}".encode()).digest(),
                    num_samples=10 + i,
                ),
                account=k,
                domain=c.domain,
            )
            for i, k in enumerate(keys)
        ]
        packed = pack_commitments(signed, {k.address: i for i, k in enumerate(keys)})
        call = c.contract.functions.postCommitments(rnd, packed)
        t = time.perf_counter()  # the same transaction for both designs, with room for either
        c._send(agg, call, gas=200_000 + 20_000 * clients, label="postCommitments", round=rnd)
        secs.append(time.perf_counter() - t)
        gas.append(chain.log.records[-1].gas_used)
        chain.mine_to(chain.block_number + 1)
        base = hashlib.sha256(f"model {rnd}".encode()).digest()
        c.finalize_round(agg, round=rnd, global_model_hash=base, outcomes=[0] * clients, flagged=[])
    recs = c.commitments()
    # one fraud proof against the last round's first entry (valid: it must be refused, which
    # costs the same checks as an accepted proof)
    last = recs[rounds - 1]
    t = time.perf_counter()
    try:
        c.prove_bad_signature(
            admin,
            round=rounds - 1,
            batch=0,
            position=0,
            packed=pack_records(last, {k.address: i for i, k in enumerate(keys)}),
            client=keys[0].address,
        )
    except Exception:  # FedLedgerSignatureValid: the entry is honest
        pass
    proof_s = time.perf_counter() - t
    return {
        "gas_per_commitment": statistics.median(gas) / clients,
        "ms_per_commitment": statistics.median(secs) / clients * 1e3,
        "proof_ms": proof_s * 1e3,
        "records": [
            [(r.client, r.update_hash, r.num_samples) for r in recs[k]] for k in sorted(recs)
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["node", str(ROOT / "scripts/compile.js"), tmp, str(ROOT / "benchmarks/contracts")],
            check=True,
            capture_output=True,
        )
        arts = {
            n: json.loads((Path(tmp) / f"{n}.json").read_text())
            for n in ("FedLedger", "FedLedgerVerified")
        }
    results = {}
    for _ in range(2):  # interleaved twice; the second pass is reported (warm caches)
        for name, art in arts.items():
            results[name] = measure(art, clients=args.clients, rounds=args.rounds)
    a, b = results["FedLedger"], results["FedLedgerVerified"]
    if a["records"] != b["records"]:
        raise SystemExit("the two designs recorded different commitments: the comparison is void")
    print(
        f"clients_per_round={args.clients} rounds={args.rounds} (py-evm, one process, interleaved)"
    )
    print(f"{'design':<34}{'gas/commitment':>16}{'py-evm ms/commitment':>22}")
    print(
        f"{'fraud proofs (FedLedger)':<34}{a['gas_per_commitment']:>16.0f}{a['ms_per_commitment']:>22.3f}"
    )
    print(
        f"{'on-chain checks (FedLedgerVerified)':<34}{b['gas_per_commitment']:>16.0f}{b['ms_per_commitment']:>22.3f}"
    )
    print(f"one fraud proof over a {args.clients}-commitment batch: {a['proof_ms']:.1f} ms")
    print(f"gas_ratio={b['gas_per_commitment'] / a['gas_per_commitment']:.2f}")
    print(f"time_ratio={b['ms_per_commitment'] / a['ms_per_commitment']:.2f}")


if __name__ == "__main__":
    main()
