"""``fedledger run --resume``: an interrupted run goes on from its last recorded round, and
ends with the global model an uninterrupted run would have (the same hash).

The run directory keeps a checkpoint after every recorded round
(:mod:`fedledger.engine.checkpoint`); on resume the config must be the one the run recorded,
the metrics are cut back to the checkpoint's round, the embedded chain is replayed from its
genesis up to that round's finalization (:class:`~fedledger.ledger.session.ResumePoint`), and
the rounds after it are trained again: every random choice derives from (seed, round, client)
and the previous global model, so they come out as they would have.

Not resumable (a ConfigError says so): a run on a node (the node keeps the interrupted round's
transactions), with a task market, with simulated network time, or asynchronous.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fedledger.config import ExperimentConfig
from fedledger.engine.checkpoint import RoundState, load_state
from fedledger.errors import ConfigError, DataError
from fedledger.ledger.store import sha256_hex
from fedledger.protocol.blobs import model_blob

if TYPE_CHECKING:
    from fedledger.aggregation.server_opt import ServerOptimizer
    from fedledger.attacks.adversary import Adversary
    from fedledger.federation import Federation
    from fedledger.protocol.decide import RoundDecision


def resume_point(out: Path, cfg: ExperimentConfig) -> RoundState | None:
    """The checkpoint to go on from, after checking that ``out`` holds an interrupted run of
    ``cfg``; None when the run recorded no round yet (it then starts afresh)."""
    unsupported = [
        what
        for what, on in (
            ("ledger.url (a node)", bool(cfg.ledger.url)),
            ("[task]", cfg.task is not None),
            ("[network]", cfg.network is not None),
            ("[asynchronous]", cfg.asynchronous is not None),
        )
        if on
    ]
    if unsupported:
        raise ConfigError(
            f"--resume does not support a run with {', '.join(unsupported)}; run it again "
            "with --overwrite"
        )
    if not (out / "config.toml").exists():
        raise ConfigError(f"--resume: {out} holds no run (no config.toml); drop --resume")
    if (out / "summary.json").exists():
        raise ConfigError(f"--resume: the run in {out} is finished (it has summary.json)")
    if (out / "config.toml").read_text(encoding="utf-8") != cfg.to_toml():
        raise ConfigError(
            f"--resume: this configuration differs from the one the run recorded in "
            f"{out}/config.toml; resume with the same config file and --set values"
        )
    return load_state(out)


def snapshot(
    rnd: int,
    *,
    params: torch.Tensor,
    global_hash: bytes,
    flag_counts: list[int],
    detection: list[int],
    decision: RoundDecision,
    adversary: Adversary | None,
    fed: Federation,
    server: ServerOptimizer,
) -> RoundState:
    """The state after round ``rnd`` (tensors are shared, not copied: the engine replaces
    them rather than changing them in place)."""
    ctx = fed.rule_context
    return RoundState(
        round=rnd,
        params=params,
        global_model_hash=global_hash,
        flag_counts=list(flag_counts),
        detection=list(detection),
        outcomes=[int(o) for o in decision.outcomes],
        flagged=[int(c) for c in decision.flagged],
        previous_update=None if adversary is None else adversary.previous_update,
        rule_state={k: dict(v) for k, v in ctx.state.items()} if ctx is not None else {},
        server_state=server.state_dict(),
    )


def restore(
    state: RoundState,
    *,
    fed: Federation,
    adversary: Adversary | None,
    server: ServerOptimizer,
) -> tuple[torch.Tensor, list[int], list[int]]:
    """Put the checkpoint's state back; (params, flag counts, detection)."""
    params = state.params.to(torch.float32)
    if sha256_hex(model_blob(params)) != state.global_model_hash.hex() or params.shape != (
        fed.dim,
    ):
        raise DataError(
            "the checkpoint's model does not match its recorded hash or this run's model; "
            "the run cannot be resumed: run it again with --overwrite"
        )
    if len(state.flag_counts) != fed.cfg.federation.num_clients:
        raise DataError("the checkpoint's flag counts are for another number of clients")
    if fed.rule_context is not None:
        fed.rule_context.state = {k: dict(v) for k, v in state.rule_state.items()}
    if adversary is not None:
        adversary.previous_update = state.previous_update
    if state.server_state:
        server.load_state_dict(_server_state(state.server_state))
    return params, list(state.flag_counts), list(state.detection)


def _server_state(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    out["hyper"] = {k: float(v) for k, v in dict(raw.get("hyper") or {}).items()}
    return out
