"""Contribution scoring: how much each client's update of a round is worth to the model.

Pure functions, one method per file, all deterministic for a given seed:

* ``exact_shapley`` (``exact.py``): the Shapley value by enumerating every coalition, the
  reference for small rounds (2^n evaluations of the utility);
* ``leave_one_out`` (``loo.py``): v(N) - v(N without i);
* ``tmc_shapley`` (``tmc.py``): truncated Monte-Carlo Shapley (Ghorbani & Zou, ICML 2019);
* ``gtg_shapley`` (``gtg.py``): guided truncation gradient Shapley (Liu et al., ACM TIST 2022),
  from the round's updates, without retraining;
* ``committee_scores`` (``committee.py``): the share of committee members that accepted each
  commitment;
* ``beta_reputation`` (``reputation.py``): a client's reputation from its history of used and
  rejected updates (Josang & Ismail 2002).

The utility-based scorers take a :class:`~fedledger.incentives.utility.Utility`: the value of
a coalition of the round's clients, usually :func:`~fedledger.incentives.utility.round_utility`
(the validation accuracy of the global model updated with that coalition's FedAvg).

The names below are imported on first use, so that ``fedledger.incentives.config`` (and the
whole configuration) loads without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger._lazy import lazy_exports

if TYPE_CHECKING:
    from fedledger.incentives.committee import committee_scores
    from fedledger.incentives.exact import exact_shapley
    from fedledger.incentives.gtg import gtg_shapley
    from fedledger.incentives.loo import leave_one_out
    from fedledger.incentives.reputation import beta_reputation
    from fedledger.incentives.scorers import UTILITY_SCORERS
    from fedledger.incentives.scorers import Scorer as Scorer
    from fedledger.incentives.tmc import tmc_shapley
    from fedledger.incentives.utility import Utility, round_utility

_EXPORTS = {
    "Scorer": "scorers",
    "UTILITY_SCORERS": "scorers",
    "Utility": "utility",
    "beta_reputation": "reputation",
    "committee_scores": "committee",
    "exact_shapley": "exact",
    "gtg_shapley": "gtg",
    "leave_one_out": "loo",
    "round_utility": "utility",
    "tmc_shapley": "tmc",
}
__all__ = [
    "UTILITY_SCORERS",
    "Utility",
    "beta_reputation",
    "committee_scores",
    "exact_shapley",
    "gtg_shapley",
    "leave_one_out",
    "round_utility",
    "tmc_shapley",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
