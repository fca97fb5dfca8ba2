"""docs/architecture.md states FedAvg's rounding so that anyone can reproduce a run's model
hashes without fedledger's aggregation code: this test does, with NumPy and the run's store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from helpers import tiny_config
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from fedledger.audit.checks_deployment import read_view
from fedledger.engine import run_experiment
from fedledger.ledger.chain import Chain, TxLog
from fedledger.ledger.contract import FedLedgerContract
from fedledger.ledger.deployment import Deployment
from fedledger.ledger.store import BlobStore


def test_an_independent_fedavg_reproduces_every_recorded_model(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(federation={"num_clients": 6, "clients_per_round": 4, "rounds": 4})
    run_experiment(cfg, out=out, progress=False)
    dep = Deployment.load(out / "ledger/deployment.json")
    chain = Chain.from_genesis(dep.genesis or {})
    list(chain.replay(TxLog.read(out / "ledger/transactions.jsonl")))
    view = read_view(FedLedgerContract(chain, dep.contract))
    store = BlobStore(out / "store", readonly=True)
    params = st_load(store.get_bytes(view.params.initial_model_hash.hex()))["params"]  # type: ignore[union-attr]
    for rnd in range(view.round_count):
        used = [
            c
            for c, o in zip(view.commitments[rnd], view.finalized[rnd]["outcomes"], strict=True)
            if o == 0
        ]
        w = np.array([c.num_samples for c in used], dtype=np.float64)
        s = (w / w.sum()).astype(np.float32)  # shares, rounded to float32
        acc = np.zeros(params.shape, dtype=np.float64)
        for share, c in zip(s, used, strict=True):  # float64 sum, in on-chain order
            acc += np.float64(share) * st_load(store.get_bytes(c.update_hash.hex()))[
                "delta"
            ].astype(np.float64)
        params = (params + acc.astype(np.float32)).astype(np.float32)
        digest = hashlib.sha256(st_save({"params": params})).digest()
        assert digest == view.finalized[rnd]["global_model_hash"], f"round {rnd}"
