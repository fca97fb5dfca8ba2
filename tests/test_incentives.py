"""Contribution scoring (fedledger.incentives): known answers, the Shapley axioms, and the
approximations against the exact value."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import ConfigError
from fedledger.incentives import (
    UTILITY_SCORERS,
    Utility,
    beta_reputation,
    committee_scores,
    exact_shapley,
    gtg_shapley,
    leave_one_out,
    round_utility,
    tmc_shapley,
)
from fedledger.models import create_model


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (no ties in these tests)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def table_game(values: list[float]) -> Utility:
    """A game given by its value per coalition bit mask."""
    n = (len(values) - 1).bit_length()
    return Utility(n, lambda members: values[sum(1 << i for i in members)])


def additive(w: list[float], base: float = 0.0) -> Utility:
    return Utility(len(w), lambda members: base + sum(w[i] for i in members))


games = st.integers(2, 6).flatmap(
    lambda n: st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=2**n, max_size=2**n)
)


def test_the_glove_game_has_its_textbook_value() -> None:
    """One left glove (player 0), two right gloves: a pair is worth 1. Shapley: 2/3, 1/6, 1/6."""

    def pairs(m: tuple[int, ...]) -> float:
        return float(0 in m and (1 in m or 2 in m))

    u = Utility(3, pairs)
    assert exact_shapley(u) == pytest.approx([2 / 3, 1 / 6, 1 / 6])
    assert u.evaluations == 8
    assert leave_one_out(Utility(3, pairs)) == pytest.approx([1.0, 0.0, 0.0])  # blind to spares


@settings(max_examples=60, deadline=None)
@given(games)
def test_exact_shapley_is_efficient_and_gives_null_players_nothing(values: list[float]) -> None:
    u = table_game(values)
    phi = exact_shapley(u)
    assert phi.sum() == pytest.approx(values[-1] - values[0], abs=1e-6)
    # make player 0 a null player: v(S + 0) = v(S)
    null = [values[m & ~1] for m in range(len(values))]
    assert exact_shapley(table_game(null))[0] == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(games, st.data())
def test_exact_shapley_follows_its_players(values: list[float], data: st.DataObject) -> None:
    """Relabelling the players permutes their values (symmetry / anonymity)."""
    u = table_game(values)
    n = u.n
    perm = data.draw(st.permutations(range(n)))

    def relabel(mask: int) -> int:
        return sum(1 << perm[i] for i in range(n) if mask >> i & 1)

    moved = [0.0] * len(values)
    for m, v in enumerate(values):
        moved[relabel(m)] = v
    assert exact_shapley(table_game(moved))[list(perm)] == pytest.approx(exact_shapley(u), abs=1e-6)


@pytest.mark.parametrize("name", sorted(UTILITY_SCORERS))
def test_every_scorer_returns_each_players_own_worth_in_an_additive_game(name: str) -> None:
    """v(S) = sum of w_i: every marginal is w_i, so every method must give w exactly."""
    w = [0.3, -0.1, 0.0, 0.25, 0.05]
    got = UTILITY_SCORERS[name](additive(w, base=0.5), seed=3)
    assert got == pytest.approx(w, abs=1e-12)


def concave_game(q: list[float]) -> Utility:
    """Diminishing returns on summed quality: like accuracy as data of quality q_i is added."""
    return Utility(len(q), lambda m: 1.0 - float(np.exp(-sum(q[i] for i in m))))


def test_gtg_ranks_as_exact_does_with_fewer_evaluations() -> None:
    q = [0.05, 0.4, 0.1, 0.9, 0.25, 0.0, 0.6, 0.15, 0.3, 0.75]
    exact = exact_shapley(concave_game(q))
    u = concave_game(q)
    est = gtg_shapley(u, seed=1)
    assert spearman(est, exact) > 0.9
    assert u.evaluations < 2 ** len(q)
    assert est.sum() == pytest.approx(exact.sum(), abs=0.01)  # truncation loses < eps per order


def test_tmc_converges_to_exact_without_truncation() -> None:
    q = [0.2, 0.7, 0.05, 0.4, 0.1]
    exact = exact_shapley(concave_game(q))
    est = tmc_shapley(concave_game(q), seed=0, tolerance=0.0, max_permutations=4000, convergence=0)
    assert est == pytest.approx(exact, abs=0.01)


def test_the_samplers_are_deterministic_per_seed() -> None:
    q = [0.2, 0.7, 0.05, 0.4, 0.1, 0.3]
    for scorer in (gtg_shapley, tmc_shapley):
        a, b = scorer(concave_game(q), seed=5), scorer(concave_game(q), seed=5)
        assert np.array_equal(a, b)


def test_a_round_that_changes_nothing_is_worth_nothing_to_gtg() -> None:
    """Between-round truncation: the grand coalition scores as the base model; 2 evaluations."""
    u = Utility(6, lambda m: 0.5 if len(m) in (0, 6) else 0.5 + 0.1 * len(m))
    assert np.array_equal(gtg_shapley(u), np.zeros(6))
    assert u.evaluations == 2


def test_the_exact_reference_refuses_rounds_it_cannot_enumerate() -> None:
    with pytest.raises(ConfigError, match="use gtg_shapley or tmc_shapley"):
        exact_shapley(additive([1.0] * 17))


def test_round_utility_scores_the_base_moved_by_each_coalitions_fedavg() -> None:
    """v(empty) is the base model's accuracy; v(S) that of base + the weighted mean of S."""
    torch.manual_seed(0)
    model = create_model("logreg", input_shape=(2,), num_classes=2)
    base = torch.zeros(6)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    y = torch.tensor([0, 1, 0, 1])
    # a logreg's flat params: weight (2, 2) row-major, then bias (2)
    good = torch.tensor([1.0, -1.0, -1.0, 1.0, 0.0, 0.0])  # predicts the labels
    bad = -3 * good  # predicts the opposite, and outweighs good in the mean
    updates = torch.stack([good, bad])
    u = round_utility(model, base, updates, torch.tensor([1.0, 1.0]), x, y)
    assert u(()) == 0.5  # all-zero logits: argmax picks class 0, half right
    assert u((0,)) == 1.0 and u((1,)) == 0.0 and u((0, 1)) == 0.0
    assert exact_shapley(u) == pytest.approx([0.25, -0.75])
    assert u.evaluations == 4
    with pytest.raises(ConfigError, match="unknown utility metric"):
        round_utility(model, base, updates, torch.ones(2), x, y, metric="f1")


def test_committee_scores_are_the_share_of_accepting_members() -> None:
    votes = [[1, 0, 1], [1, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert committee_scores(votes, num_commitments=3) == pytest.approx([0.75, 0.25, 0.5])
    assert np.array_equal(committee_scores([], num_commitments=2), [0.0, 0.0])
    with pytest.raises(ValueError, match="0 \\(reject\\) or 1 \\(accept\\)"):
        committee_scores([[2, 0]], num_commitments=2)


def test_beta_reputation_counts_used_and_rejected_rounds() -> None:
    history = [[1, -1, 0], [1, -1, 1], [1, 1, 0]]
    assert beta_reputation(history) == pytest.approx([4 / 5, 2 / 5, 2 / 3])
    # forgetting: the first round weighs decay^2, the second decay
    assert beta_reputation(history, decay=0.5)[1] == pytest.approx((1 + 1) / (1 + 0.25 + 0.5 + 2))
    with pytest.raises(ValueError, match="decay"):
        beta_reputation(history, decay=0.0)


def test_leave_one_out_is_blind_to_duplicates_where_shapley_is_not() -> None:
    """Two clients with the same data: each adds nothing once the other is in (LOO 0, 0),
    while Shapley splits their joint worth."""

    def twins(m: tuple[int, ...]) -> float:
        return float(bool({0, 1} & set(m))) + 0.5 * (2 in m)

    assert leave_one_out(Utility(3, twins)) == pytest.approx([0.0, 0.0, 0.5])
    assert exact_shapley(Utility(3, twins)) == pytest.approx([0.5, 0.5, 0.5])


def test_coalitions_are_evaluated_once() -> None:
    calls: list[tuple[int, ...]] = []

    def value(m: tuple[int, ...]) -> float:
        calls.append(m)
        return float(len(m))

    u = Utility(4, value)
    exact_shapley(u)
    leave_one_out(u)
    assert len(calls) == 16 == u.evaluations
    assert sorted(calls) == sorted(c for k in range(5) for c in combinations(range(4), k))


def test_bonus_and_validator_flags_of_a_rounds_entries() -> None:
    """Commitments of clients 0, 1, 3 (in that order); 0 and 3 used, 1 rejected. Members 1
    and 3 voted exactly the outcome, member 2 (no commitment) too, member 0 accepted 1."""
    from fedledger.incentives.entries import round_entries

    model = create_model("logreg", input_shape=(4,), num_classes=2)
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    x_val, y_val = torch.zeros(6, 4), torch.tensor([0, 1, 0, 1, 0, 1])
    entries, values = round_entries(
        model=model,
        params=params,
        used=[0, 3],
        used_updates=[torch.zeros_like(params), torch.ones_like(params) * 0.01],
        num_samples={0: 5, 1: 7, 3: 9},
        order=[0, 1, 3],
        outcomes=[0, 3, 0],
        votes=[(0, [1, 1, 1]), (1, [1, 0, 1]), (2, [1, 0, 1]), (3, [0, 0, 1])],
        num_clients=4,
        epochs=2,
        scoring="exact_shapley",
        scale=10**6,
        seed=0,
        x_val=x_val,
        y_val=y_val,
    )
    assert sorted(values) == [0, 3]
    # accepts: client 0 three, client 3 four: the bonus goes to 3 alone
    assert [e[2] for e in entries] == [False, False, False, True]
    # validators: agreeing members with a commitment (member 2 has none, member 0 disagreed)
    assert [e[3] for e in entries] == [False, True, False, False]
    assert [e[1] for e in entries] == [10, 0, 0, 18]  # work only for used updates
