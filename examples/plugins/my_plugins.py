"""One user file that extends fedledger with a model, a data set, a partition scheme, an
aggregation rule, an attack and a client training loop (docs/extending.md). A config names it
with ``plugins = ["my_plugins"]`` (found next to the config file); ``fedledger audit`` of the
run imports it again from the path the run recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pydantic import Field
from sklearn.datasets import load_wine

from fedledger.aggregation import AggregationContext, AggregationResult, register_rule
from fedledger.attacks import Attack, AttackContext, register_attack
from fedledger.client import LocalResult, register_trainer, train_local
from fedledger.data import (
    DatasetRequest,
    PartitionArgs,
    RawDataset,
    register_dataset,
    register_partition,
    split,
    standardise,
)
from fedledger.models import register_model


# --- a model: one tanh hidden layer -------------------------------------------------------
@dataclass
class TanhNetConfig:
    width: int = 32


@register_model("tanh_net", config=TanhNetConfig)
class TanhNet(torch.nn.Module):
    def __init__(self, config: TanhNetConfig, *, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        d = int(np.prod(input_shape))
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(d, config.width),
            torch.nn.Tanh(),
            torch.nn.Linear(config.width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (N, num_classes) logits


# --- a data set: scikit-learn's wine, with optional feature noise --------------------------
@register_dataset("wine")
def load_wine_data(req: DatasetRequest) -> RawDataset:
    noise = float(req.params.get("noise", 0.0))
    x, y = load_wine(return_X_y=True)
    if noise > 0:
        x = x + np.random.default_rng(req.seed).normal(0.0, noise, x.shape) * x.std(axis=0)
    names = tuple(str(c) for c in range(3))
    return split(x.astype(np.float64), y.astype(np.int64), names, req, standardise)


# --- a partition: clients take contiguous blocks of the label-sorted samples ---------------
@register_partition("sorted_blocks")
def sorted_blocks(y: np.ndarray, args: PartitionArgs, rng: np.random.Generator) -> list:
    order = np.argsort(y, kind="stable")
    return [np.asarray(b) for b in np.array_split(order, args.num_clients)]


# --- a rule: clip every update to the median norm, then the weighted mean ------------------
@register_rule("median_norm_mean")
def median_norm_mean(
    updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext, factor: float = 1.0
) -> AggregationResult:
    norms = updates.norm(dim=1)  # (n,)
    bound = factor * norms.median()
    scale = torch.clamp(bound / norms.clamp_min(1e-12), max=1.0)
    share = weights / weights.sum()
    return AggregationResult(
        aggregate=(share * scale) @ updates, weights=share, scores=norms
    )


# --- an attack: the attacker sends its update plus Gaussian noise of a given scale ---------
@register_attack("noisy_update")
class NoisyUpdate(Attack):
    poisons_updates = True
    sigma: float = Field(1.0, gt=0)

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        noise = torch.randn(malicious.shape, generator=generator, dtype=malicious.dtype)
        return malicious + self.sigma * noise


# --- a client training loop: plain local training, then the update scaled by `damping` -----
@register_trainer("damped_sgd")
def damped_sgd(
    model: torch.nn.Module,
    global_params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    params: dict,
    **settings: object,
) -> LocalResult:
    res = train_local(model, global_params, x, y, **settings)  # type: ignore[arg-type]
    damping = float(params.get("damping", 0.5))
    return LocalResult(delta=damping * res.delta, num_samples=res.num_samples, loss=res.loss)
