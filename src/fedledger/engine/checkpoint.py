"""What an interrupted run needs to go on as if it had never stopped (``fedledger run
--resume``), kept in ``RUN_DIR/resume/`` after each round is recorded.

Everything that carries from one round to the next besides the chain and the blob store:
the global model, the rule's per-client state (FoolsGold's history), the server optimiser's
moments, the clients' on-chain flag counts, the attack's view of the last aggregate, the
detection tallies, and the round's decision (outcomes, flagged clients) that the chain has not
finalized yet — the transaction that finalizes round r also opens round r + 1, so a resumed run
replays the transaction log up to just before it and sends it again with the re-made round
r + 1. Tensors are safetensors and the rest JSON: nothing is unpickled. Files are replaced
atomically (write, then rename), so a kill leaves the previous round's checkpoint intact.

A checkpoint is not evidence: the audit re-derives every round from the chain and the store,
and a resumed run is audited as a whole like any other.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from fedledger.errors import DataError

RESUME_DIR = "resume"
_TENSORS, _META = "state.safetensors", "state.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader, or a process killed at any moment, finds
    the old file or the new one, never a part: a temporary file in the same folder renamed over
    it. (Not synced to disk: it guards against a killed process, not a power cut.)"""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class RoundState:
    """The run's state right after round ``round`` (see the module docstring)."""

    round: int
    params: torch.Tensor  # (d,) the global model after the round
    global_model_hash: bytes
    flag_counts: list[int]
    detection: list[int]  # tp, fp, fn so far
    outcomes: list[int]  # the round's decision, for its finalization
    flagged: list[int]
    previous_update: torch.Tensor | None = None  # the attack's view of the last aggregate
    rule_state: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)
    server_state: dict[str, Any] = field(default_factory=dict)


def save_state(run_dir: Path, state: RoundState) -> None:
    """Write ``state`` as the run's checkpoint (tensors first, then the JSON that names them:
    the JSON's round is the checkpoint's round)."""
    folder = run_dir / RESUME_DIR
    folder.mkdir(exist_ok=True)
    tensors: dict[str, torch.Tensor] = {"params": state.params.contiguous()}
    if state.previous_update is not None:
        tensors["previous_update"] = state.previous_update.contiguous()
    for key, rows in state.rule_state.items():
        for client, row in rows.items():
            tensors[f"rule/{key}/{client}"] = row.contiguous()
    server = dict(state.server_state)
    for key in ("m", "v"):
        value = server.pop(key, None)
        if isinstance(value, torch.Tensor):
            tensors[f"server/{key}"] = value.contiguous()
    data = st_save(tensors)
    write_atomic(folder / _TENSORS, data)
    meta = {
        "tensors_sha256": hashlib.sha256(data).hexdigest(),
        "round": state.round,
        "global_model_hash": state.global_model_hash.hex(),
        "flag_counts": state.flag_counts,
        "detection": state.detection,
        "outcomes": state.outcomes,
        "flagged": state.flagged,
        "server": server,
        "tensors": sorted(tensors),
    }
    write_atomic(folder / _META, (json.dumps(meta, sort_keys=True) + "\n").encode())


def load_state(run_dir: Path) -> RoundState | None:
    """The run's checkpoint, or None when it has none (interrupted before its first round was
    recorded); a DataError when it is unreadable or does not fit together."""
    folder = run_dir / RESUME_DIR
    if not (folder / _META).exists():
        return None
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        data = (folder / _TENSORS).read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["tensors_sha256"]:
            raise ValueError(f"{_TENSORS} is not the file {_META} was written with")
        tensors = st_load(data)
        if sorted(tensors) != meta["tensors"]:
            raise ValueError("its tensors are not the ones its state.json names")
        rule: dict[str, dict[int, torch.Tensor]] = {}
        for name, t in tensors.items():
            if name.startswith("rule/"):
                _, key, client = name.split("/")
                rule.setdefault(key, {})[int(client)] = t
        server = dict(meta["server"])
        if server:
            server["m"] = tensors.get("server/m")
            server["v"] = tensors.get("server/v")
        return RoundState(
            round=int(meta["round"]),
            params=tensors["params"],
            global_model_hash=bytes.fromhex(meta["global_model_hash"]),
            flag_counts=[int(c) for c in meta["flag_counts"]],
            detection=[int(c) for c in meta["detection"]],
            outcomes=[int(o) for o in meta["outcomes"]],
            flagged=[int(c) for c in meta["flagged"]],
            previous_update=tensors.get("previous_update"),
            rule_state=rule,
            server_state=server,
        )
    except Exception as exc:  # a file of the run directory: any fault is "cannot resume"
        raise DataError(
            f"{folder} holds no usable checkpoint ({type(exc).__name__}: {exc}); the run cannot "
            "be resumed: run it again with --overwrite"
        ) from None
