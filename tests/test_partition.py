"""Partitioners: disjoint cover for every scheme (Hypothesis), seeding, skew, failure paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.data import format_label_histogram, label_histogram, partition, partition_names
from fedledger.errors import ConfigError

SCHEMES = ["dirichlet", "iid", "quantity_skew", "shards"]


def assert_disjoint_cover(parts: list[np.ndarray], n: int, num_clients: int) -> None:
    assert len(parts) == num_clients
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)  # sorted, unique
    everything = np.concatenate(parts)
    assert len(everything) == n  # nobody twice ...
    assert np.array_equal(np.sort(everything), np.arange(n))  # ... and nobody left out


def test_scheme_names() -> None:
    assert partition_names() == SCHEMES


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    scheme=st.sampled_from(SCHEMES),
    num_clients=st.integers(1, 12),
    num_classes=st.integers(1, 6),
    seed=st.integers(0, 2**32),
)
def test_every_scheme_is_a_disjoint_cover(
    data: st.DataObject, scheme: str, num_clients: int, num_classes: int, seed: int
) -> None:
    n = data.draw(st.integers(4 * num_clients, 200), label="n")
    labels = np.array(data.draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)))
    spc = data.draw(st.integers(1, 3), label="shards_per_client")
    min_size = data.draw(st.integers(1, 2), label="min_size")
    parts = partition(
        labels,
        num_clients=num_clients,
        scheme=scheme,
        seed=seed,
        alpha=data.draw(st.sampled_from([0.3, 1.0, 100.0]), label="alpha"),
        shards_per_client=spc,
        sigma=data.draw(st.sampled_from([0.0, 1.0, 3.0]), label="sigma"),
        min_size=min_size,
    )
    assert_disjoint_cover(parts, n, num_clients)
    assert min(len(p) for p in parts) >= min_size


@pytest.mark.parametrize("scheme", SCHEMES)
def test_seeded(scheme: str) -> None:
    y = np.repeat(np.arange(10), 30)
    a = partition(y, num_clients=7, scheme=scheme, seed=5)
    b = partition(torch.from_numpy(y), num_clients=7, scheme=scheme, seed=5)
    c = partition(y, num_clients=7, scheme=scheme, seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))


def test_iid_is_balanced() -> None:
    y = np.repeat(np.arange(10), 100)
    parts = partition(y, num_clients=7, scheme="iid", seed=0)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 1000
    hist = label_histogram(y, parts, num_classes=10)
    assert hist.min() >= 5  # every client sees every class


def test_shards_give_one_or_two_classes_per_client() -> None:
    y = np.repeat(np.arange(10), 10)  # 100 samples, 10 per class
    one = partition(y, num_clients=10, scheme="shards", seed=0, shards_per_client=1)
    hist = label_histogram(y, one, num_classes=10)
    assert np.array_equal(np.sort(hist, axis=1)[:, -1], np.full(10, 10))  # exactly one class
    assert np.array_equal(hist.sum(axis=0), np.full(10, 10))
    two = partition(y, num_clients=10, scheme="shards", seed=0, shards_per_client=2)
    hist = label_histogram(y, two, num_classes=10)
    assert np.all((hist > 0).sum(axis=1) <= 2) and np.all(hist.sum(axis=1) == 10)


def test_dirichlet_alpha_controls_skew() -> None:
    y = np.repeat(np.arange(10), 100)

    def mean_classes(alpha: float) -> float:
        parts = partition(y, num_clients=10, scheme="dirichlet", seed=1, alpha=alpha)
        return float((label_histogram(y, parts, num_classes=10) > 0).sum(axis=1).mean())

    assert mean_classes(0.05) < 4 < 9.5 < mean_classes(100.0)
    parts = partition(y, num_clients=20, scheme="dirichlet", seed=1, alpha=0.1, min_size=10)
    assert min(len(p) for p in parts) >= 10


def test_dirichlet_gives_up_with_a_clear_error() -> None:
    y = np.repeat(np.arange(10), 10)
    with pytest.raises(ConfigError, match=r"in 1000 draws .*raise alpha"):
        partition(y, num_clients=10, scheme="dirichlet", seed=0, alpha=0.01, min_size=10)


def test_quantity_skew_sizes() -> None:
    y = np.repeat(np.arange(10), 100)
    flat = partition(y, num_clients=8, scheme="quantity_skew", seed=0, sigma=0.0)
    sizes = [len(p) for p in flat]
    assert max(sizes) - min(sizes) <= 1
    skewed = partition(y, num_clients=8, scheme="quantity_skew", seed=0, sigma=2.0, min_size=5)
    sizes = [len(p) for p in skewed]
    assert min(sizes) >= 5 and max(sizes) > 3 * min(sizes) and sum(sizes) == 1000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "pathological"}, "expected one of: dirichlet, iid, quantity_skew, shards"),
        ({"num_clients": 31}, "cannot give 31 clients at least 1 sample"),
        ({"num_clients": 0}, "num_clients must be an integer >= 1"),
        ({"alpha": 0.0, "scheme": "dirichlet"}, "alpha .* must be > 0"),
        ({"alpha": -1.0}, "alpha"),
        ({"sigma": -0.5, "scheme": "quantity_skew"}, "sigma"),
        ({"shards_per_client": 4, "scheme": "shards"}, "40 shards but only 30 samples"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"min_size": 0}, "min_size"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"num_clients": 10, "scheme": "iid", "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=message):
        partition(np.arange(30) % 3, **args)  # type: ignore[arg-type]


def test_bad_labels() -> None:
    with pytest.raises(ConfigError, match="1-D"):
        partition(np.zeros((4, 2), dtype=np.int64), num_clients=2, scheme="iid", seed=0)
    with pytest.raises(ConfigError, match="integers"):
        partition(np.zeros(4), num_clients=2, scheme="iid", seed=0)


def test_label_histogram_known_answer() -> None:
    y = torch.tensor([0, 1, 1, 2, 2, 2])
    parts = [np.array([0, 3]), np.array([1, 2, 4, 5])]
    hist = label_histogram(y, parts, num_classes=4)
    assert hist.tolist() == [[1, 0, 1, 0], [0, 2, 2, 0]]
    with pytest.raises(ConfigError, match="num_classes is 2"):
        label_histogram(y, parts, num_classes=2)
    text = format_label_histogram(hist)
    assert text.splitlines()[0].split() == ["client", "0", "1", "2", "3", "total"]
    assert text.splitlines()[2].split() == ["1", "0", "2", "2", "0", "4"]
