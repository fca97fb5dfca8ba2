"""``[task]`` and ``[incentives]``: the terms a requester posts on the task market, and how
contributions are scored and workers decide to join. Checked before anything is deployed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOKEN = 10**18  # base units per token (18 decimals)
SCORERS = ("gtg_shapley", "tmc_shapley", "leave_one_out", "exact_shapley")


class TaskConfig(BaseModel):
    """The task's terms, in tokens (18 decimals) and blocks."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    budget: float = Field(1000.0, gt=0, description="score shares and bonuses, over all rounds")
    cost_budget: float = Field(
        100.0, ge=0, description="supply-cost reimbursements, over all rounds"
    )
    stake: float = Field(1.0, gt=0, description="each worker's stake")
    aggregator_bond: float = Field(10.0, ge=0)
    cost_rate_cap: float = Field(
        0.001, ge=0, description="the most a worker may declare per unit of work"
    )
    bonus_share: float = Field(
        0.1, ge=0, le=1, description="part of the budget for each round's bonus"
    )
    validator_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="part of the budget for each round's committee members whose vote agreed "
        "with the outcome",
    )
    challenge_window: int = Field(
        3, ge=1, description="blocks in which a posted round can be challenged"
    )
    join_period: int = Field(
        300, ge=1, description="blocks from posting the task to its join deadline"
    )
    bind_period: int = Field(50, ge=1)
    round_period: int = Field(10_000, ge=1, description="blocks per round to post its scores")

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        if self.bonus_share + self.validator_share > 1:
            raise ValueError(
                f"bonus_share ({self.bonus_share}) and validator_share ({self.validator_share}) "
                "add up to more than the whole budget"
            )
        if self.cost_budget > 0 and self.cost_rate_cap == 0:
            raise ValueError(
                "a cost_budget needs a cost_rate_cap above 0 (tokens per unit of work)"
            )
        return self

    def check_against(self, *, rounds: int) -> None:
        """The terms against the run: every round's reward pool must be at least one base unit."""
        reward_share = 1 - self.bonus_share - self.validator_share
        if reward_share > 0 and int(self.budget * TOKEN * reward_share) // rounds == 0:
            raise ValueError(
                f"task.budget {self.budget} is too small for {rounds} rounds: a round's reward "
                "pool would be 0 base units"
            )


class IncentivesConfig(BaseModel):
    """How contributions are scored (each round, from the round's updates, on a validation set
    the requester holds) and what each simulated worker's supply cost is."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    scoring: Literal["gtg_shapley", "tmc_shapley", "leave_one_out", "exact_shapley"] = "gtg_shapley"
    validation_samples: int = Field(200, ge=10, description="the requester's validation set")
    score_scale: int = Field(
        10**6, ge=1, description="scores are posted as integers: value x scale"
    )
    cost_low: float = Field(
        0.0002, ge=0, description="workers' private cost per unit of work, from"
    )
    cost_high: float = Field(0.001, ge=0, description="... to (uniform, seeded)")
    participation: Literal["all", "rational"] = Field(
        "all",
        description="'all': every worker joins; 'rational': a worker joins only if the posted "
        "terms cover its expected cost (individual rationality)",
    )

    @model_validator(mode="after")
    def _check(self) -> IncentivesConfig:
        if self.cost_high < self.cost_low:
            raise ValueError(f"cost_high ({self.cost_high}) is below cost_low ({self.cost_low})")
        return self
