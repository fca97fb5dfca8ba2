"""The experiment loop: one BCFL round after another, in one process (the simulation engine).

Round protocol (docs/architecture.md): select -> open round on-chain -> each client trains from
the global model, writes its update blob (safetensors, named by SHA-256) and signs an EIP-712
commitment -> the aggregator posts the commitments in one transaction; a client left out
submits its own -> the aggregator fetches and checks every committed update, rejects malformed
ones with a reason, runs the rule -> the new global model blob is written and the round is
finalized on-chain with one outcome per commitment -> evaluation, metrics row, progress line.
With ``ledger.enabled = false`` the identical training runs without chain, store or signatures.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.aggregation import AggregationContext, create_rule
from fedledger.client import evaluate, train_local
from fedledger.config import ExperimentConfig
from fedledger.data import label_histogram, load_dataset, partition
from fedledger.engine.outputs import RunOutputs
from fedledger.engine.session import LedgerSession, RoundPlan
from fedledger.engine.validation import UPDATE_KEY, check_update, load_update, reason_code
from fedledger.errors import UpdateRejected
from fedledger.ledger.signing import SignedCommitment
from fedledger.ledger.store import BlobStore, encode_tensors, sha256_hex
from fedledger.models import create_model, get_flat_params

log = logging.getLogger("fedledger")

MODEL_KEY = "params"
UpdateHook = Callable[[int, int, torch.Tensor], "torch.Tensor | bytes"]


@dataclass
class Hooks:
    """Test and attack seams. ``update(round, client, delta)`` may return a different tensor or
    raw blob bytes; ``drop_commitment(round, client)`` makes the aggregator leave a commitment
    out of its batch (the client then submits it itself)."""

    update: UpdateHook | None = None
    drop_commitment: Callable[[int, int], bool] | None = None


def select_clients(*, seed: int, round: int, num_clients: int, k: int) -> list[int]:
    """Seeded choice of k distinct clients for a round, sorted."""
    rng = np.random.default_rng([seed, round, 0x5E1EC7])
    return sorted(int(i) for i in rng.choice(num_clients, size=k, replace=False))


def client_seed(*, seed: int, round: int, client: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{round}:{client}".encode()).digest()[:8], "big")


def aggregation_generator(*, seed: int, round: int) -> torch.Generator:
    """The generator a (noisy) rule gets in a round; the auditor re-creates it."""
    return torch.Generator().manual_seed(client_seed(seed=seed, round=round, client=-1))


def model_blob(params: torch.Tensor) -> bytes:
    return encode_tensors({MODEL_KEY: params})


def update_blob(delta: torch.Tensor) -> bytes:
    return encode_tensors({UPDATE_KEY: delta})


@dataclass
class RoundRecord:
    round: int
    selected: list[int]
    used: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    flagged: list[int] = field(default_factory=list)


def run_experiment(
    cfg: ExperimentConfig,
    *,
    out: Path,
    hooks: Hooks | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``cfg`` and write RUN_DIR ``out``; returns the summary dict (also summary.json)."""
    hooks = hooks or Hooks()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    t_start = time.perf_counter()
    fed = cfg.federation

    data = load_dataset(
        cfg.data.name,
        seed=cfg.seed,
        data_dir=cfg.data.data_dir,
        path=cfg.data.path,
        label_column=cfg.data.label_column,
        test_fraction=cfg.data.test_fraction,
        max_train_samples=cfg.data.max_train_samples,
        max_test_samples=cfg.data.max_test_samples,
    )
    parts = partition(
        data.y_train,
        num_clients=fed.num_clients,
        scheme=cfg.data.partition,
        seed=cfg.seed,
        alpha=cfg.data.alpha,
        shards_per_client=cfg.data.shards_per_client,
        sigma=cfg.data.sigma,
        min_size=cfg.data.min_size,
    )
    per_round = fed.per_round
    rule = create_rule(cfg.aggregation.name, cfg.aggregation.params(), num_clients=per_round)
    torch.manual_seed(cfg.seed)
    model = create_model(
        cfg.model.name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        **cfg.model.params(),
    )
    params = get_flat_params(model)
    dim = params.numel()
    client_x = [data.x_train[torch.as_tensor(p)] for p in parts]
    client_y = [data.y_train[torch.as_tensor(p)] for p in parts]

    outputs = RunOutputs(out, cfg)
    outputs.write_clients(label_histogram(data.y_train, parts, num_classes=data.num_classes))

    store: BlobStore | None = None
    session: LedgerSession | None = None
    blob = model_blob(params)
    global_hash = sha256_hex(blob)
    if cfg.ledger.enabled:
        store = BlobStore(out / "store", write_behind=True)
        store.put_bytes(blob)
        session = LedgerSession(cfg, run_dir=out, initial_model_hash=bytes.fromhex(global_hash))

    acc = loss = float("nan")
    # the ledger work of round r runs on a worker thread (the embedded chain in a child
    # process) while round r+1 trains; rows are written once their round is on-chain
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger") if session else None
    pending: list[tuple[dict[str, Any], dict[int, str], Future[tuple[int, int]] | None]] = []

    def flush(keep: int) -> None:
        while len(pending) > keep:
            row, rejected, fut = pending.pop(0)
            if fut is not None:
                row["tx_count"], row["gas_used"] = fut.result()
            outputs.add_round(row, rejected)

    try:
        with outputs.progress(enabled=progress, total=fed.rounds) as bar:
            for rnd in range(fed.rounds):
                t_round = time.perf_counter()
                selected = select_clients(
                    seed=cfg.seed, round=rnd, num_clients=fed.num_clients, k=per_round
                )
                rec = RoundRecord(round=rnd, selected=selected)
                base_hash = global_hash

                # ---- client side: train, store, sign
                raw_updates: dict[int, torch.Tensor | bytes] = {}
                signed: dict[int, SignedCommitment] = {}
                train_losses = []
                for cid in selected:
                    gen = torch.Generator().manual_seed(
                        client_seed(seed=cfg.seed, round=rnd, client=cid)
                    )
                    res = train_local(
                        model,
                        params,
                        client_x[cid],
                        client_y[cid],
                        epochs=fed.local_epochs,
                        batch_size=fed.batch_size,
                        lr=fed.lr,
                        generator=gen,
                        optimizer=fed.optimizer,
                        momentum=fed.momentum,
                        weight_decay=fed.weight_decay,
                    )
                    train_losses.append(res.loss)
                    upd: torch.Tensor | bytes = res.delta
                    if hooks.update is not None:
                        upd = hooks.update(rnd, cid, res.delta)
                    raw_updates[cid] = upd
                    if session and store:
                        h = store.put_bytes(upd if isinstance(upd, bytes) else update_blob(upd))
                        signed[cid] = session.client_sign(
                            cid,
                            round=rnd,
                            update_hash=bytes.fromhex(h),
                            num_samples=res.num_samples,
                        )

                # ---- aggregator side: the commitments' on-chain order is the batch it posts,
                # then the clients it left out, who submit their own
                dropped = [
                    c for c in selected if hooks.drop_commitment and hooks.drop_commitment(rnd, c)
                ]
                order = [c for c in selected if c not in dropped] + dropped
                outcomes: list[int] = []
                used_updates: list[torch.Tensor] = []
                weights: list[float] = []
                for cid in order:
                    n_samples = len(parts[cid])
                    try:
                        if session and store:
                            c = signed[cid].commitment
                            n_samples = c.num_samples
                            delta = load_update(
                                store, c.update_hash.hex(), dim=dim, num_samples=c.num_samples
                            )
                        else:
                            u = raw_updates[cid]
                            if isinstance(u, bytes):
                                raise UpdateRejected("MALFORMED", "raw bytes without a store")
                            delta = check_update(u, dim=dim)
                    except UpdateRejected as exc:
                        log.warning("round %d: rejected client %d's update: %s", rnd, cid, exc)
                        rec.rejected[cid] = str(exc)
                        outcomes.append(reason_code(exc))
                        continue
                    outcomes.append(0)
                    rec.used.append(cid)
                    used_updates.append(delta)
                    weights.append(float(n_samples))

                # ---- aggregate, store the new global model, hand the round to the ledger
                if used_updates:
                    result = rule(
                        torch.stack(used_updates),
                        torch.tensor(weights, dtype=torch.float32),
                        ctx=AggregationContext(
                            round=rnd,
                            generator=aggregation_generator(seed=cfg.seed, round=rnd),
                            global_params=params,
                        ),
                    )
                    params = params + result.aggregate
                    rec.flagged = [rec.used[i] for i in result.excluded]
                blob = model_blob(params)
                global_hash = store.put_bytes(blob) if store else sha256_hex(blob)
                fut = None
                if session and worker:
                    plan = RoundPlan(
                        round=rnd,
                        base_model_hash=bytes.fromhex(base_hash),
                        selected=selected,
                        batch=[signed[c] for c in order if c not in dropped],
                        left_out=[(c, signed[c]) for c in dropped],
                        order=order,
                        outcomes=outcomes,
                        flagged=rec.flagged,
                        global_model_hash=bytes.fromhex(global_hash),
                    )
                    fut = worker.submit(session.record_round, plan)
                acc, loss = evaluate(model, params, data.x_test, data.y_test)
                row = {
                    "round": rnd,
                    "accuracy": acc,
                    "loss": loss,
                    "train_loss": float(np.mean(train_losses)) if train_losses else float("nan"),
                    "wall_s": time.perf_counter() - t_start,
                    "round_s": time.perf_counter() - t_round,
                    "tx_count": 0,
                    "gas_used": 0,
                    "num_selected": len(selected),
                    "num_used": len(rec.used),
                    "num_rejected": len(rec.rejected),
                    "num_flagged": len(rec.flagged),
                }
                pending.append((row, rec.rejected, fut))
                flush(keep=1)  # at most one round in flight on the ledger
                bar.advance(rnd, acc=acc, loss=loss)
            flush(keep=0)
    finally:
        if worker:
            worker.shutdown(wait=True, cancel_futures=True)
        if session:
            session.close()
        if store:
            store.close()

    summary: dict[str, Any] = {
        "name": cfg.name,
        "final_accuracy": acc,
        "final_loss": loss,
        "rounds": fed.rounds,
        "wall_s": time.perf_counter() - t_start,
        "global_model_hash": global_hash,
        "num_params": dim,
        "ledger": {
            "enabled": bool(session),
            "tx_count": session.tx_count if session else 0,
            "gas_used": session.gas_used if session else 0,
            "contract": session.contract.address if session else None,
            "chain_id": session.chain.chain_id if session else None,
            "embedded": session.chain.embedded if session else None,
        },
    }
    outputs.finish(summary)
    return summary
