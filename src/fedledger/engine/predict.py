"""``fedledger predict RUN_DIR FILE``: the trained global model of a run applied to new raw
data, prepared as the run prepared its own (preprocessing.json), predictions read back as the
original labels.

FILE is a CSV with the run's feature columns (found by name; other columns are ignored; the
label column, when present, is used to report accuracy) or an NPZ with ``x`` (and optionally
``y``). Nothing is unpickled: the model is safetensors, the rest JSON and TOML.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.config import ExperimentConfig, load_config
from fedledger.data.datasets import Preprocessing
from fedledger.errors import DataError, ModelError, StoreError
from fedledger.ledger.store import decode_tensors
from fedledger.models import create_model, set_flat_params
from fedledger.protocol.blobs import MODEL_KEY


@dataclass(frozen=True)
class Predictions:
    labels: list[str]  # the predicted original label of each row
    truth: list[str] | None  # the file's labels, when it has them
    accuracy: float | None


def predict(run_dir: Path, file: Path) -> Predictions:
    """Predict every row of ``file`` with the run's model; a DataError saying what is wrong."""
    record = _record(run_dir)
    cfg = load_config(run_dir / "config.toml")
    pre_d = record.get("preprocessing")
    if not isinstance(pre_d, dict):
        raise DataError(f"{run_dir}/preprocessing.json records no preprocessing")
    pre = Preprocessing(**pre_d)
    names = [str(c) for c in record["class_names"]]
    x, truth = _read(file, record)
    shape = tuple(int(s) for s in record["input_shape"])
    if tuple(x.shape[1:]) != shape and x.ndim == 2 and int(np.prod(shape)) == x.shape[1]:
        x = x.reshape(len(x), *shape)  # flat rows of an image data set
    if tuple(x.shape[1:]) != shape:
        raise DataError(f"{file}: rows have shape {tuple(x.shape[1:])}, the model takes {shape}")
    model = load_model(run_dir, cfg=cfg, record=record)
    with torch.no_grad():
        out = model(torch.from_numpy(pre.apply(x)))
    labels = [names[int(i)] for i in out.argmax(dim=1)]
    accuracy = None
    if truth is not None:
        accuracy = float(np.mean([a == b for a, b in zip(labels, truth, strict=True)]))
    return Predictions(labels=labels, truth=truth, accuracy=accuracy)


def load_model(
    run_dir: Path, *, cfg: ExperimentConfig | None = None, record: dict[str, Any] | None = None
) -> torch.nn.Module:
    """The run's final global model (``model.safetensors``) in its architecture, in eval mode;
    a DataError when the files do not make one."""
    record = _record(run_dir) if record is None else record
    cfg = load_config(run_dir / "config.toml") if cfg is None else cfg
    shape = tuple(int(s) for s in record["input_shape"])
    model = create_model(
        cfg.model.name,
        input_shape=shape,
        num_classes=len(record["class_names"]),
        **cfg.model.params(),
    )
    try:
        params = decode_tensors((run_dir / "model.safetensors").read_bytes())[MODEL_KEY]
        set_flat_params(model, params)
    except (OSError, StoreError, ModelError, KeyError) as exc:
        raise DataError(f"{run_dir}/model.safetensors cannot be read as a model: {exc}") from None
    model.eval()
    return model


def write_predictions(path: Path, p: Predictions) -> None:
    """One row per input row: its index, the prediction, and the file's label if it had one."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "prediction", *(["label"] if p.truth is not None else [])])
        for i, lab in enumerate(p.labels):
            w.writerow([i, lab, *([p.truth[i]] if p.truth is not None else [])])


def _record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "preprocessing.json"
    if not (run_dir / "config.toml").exists():
        raise DataError(f"{run_dir} has no config.toml; is it a run directory?")
    if not path.exists():
        raise DataError(
            f"{path} is missing: the run predates preprocessing records (run it again to "
            "predict with it)"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(record, dict) or not {"class_names", "input_shape"} <= set(record):
        raise DataError(f"{path} is not a preprocessing record")
    return record


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read(file: Path, record: dict[str, Any]) -> tuple[np.ndarray, list[str] | None]:
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise DataError(f"{file} {what}; pass a CSV or .npz file of rows to predict")
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as npz:
                if "x" not in npz.files:
                    raise DataError(f"{file}: needs an array 'x'; arrays found: {npz.files}")
                x = npz["x"].astype(np.float64)
                truth = [_label(v) for v in npz["y"]] if "y" in npz.files else None
        except (ValueError, OSError) as exc:
            raise DataError(f"{file}: cannot read as a numeric .npz: {exc}") from None
        return x, truth
    features = [str(c) for c in record.get("feature_names") or []]
    if not features:
        raise DataError(f"the run trained on {record.get('dataset')!r}, not a CSV: pass an .npz")
    try:
        with file.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except UnicodeDecodeError as exc:
        raise DataError(f"{file} is not a CSV text file (UTF-8): {exc}") from None
    if not rows:
        raise DataError(f"{file}: empty CSV file")
    header = [h.strip() for h in rows[0]]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(
            f"{file}: the run's feature columns {missing} are missing; its header is {header}, "
            f"and the run was trained on the columns {features}"
        )
    cols = [header.index(f) for f in features]
    try:
        x = np.array([[float(r[c]) for c in cols] for r in rows[1:]], dtype=np.float64)
    except (ValueError, IndexError):
        line, name, got = next(
            (i, features[j], r[c] if c < len(r) else "")
            for i, r in enumerate(rows[1:], start=2)
            for j, c in enumerate(cols)
            if not _is_number(r[c] if c < len(r) else "")
        )
        raise DataError(
            f"{file}: line {line}: feature column {name!r} must hold a number, got {got!r}"
        ) from None
    label = record.get("label_column")
    truth = None
    if isinstance(label, str) and label in header:
        k = header.index(label)
        truth = [_label(r[k].strip()) for r in rows[1:]]
    return x, truth


def _label(v: object) -> str:
    """A label as the run's class names spell it (numbers without a trailing .0)."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)
    return str(int(f)) if f.is_integer() else str(f)
