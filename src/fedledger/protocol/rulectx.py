"""What an aggregation rule may know besides the round's updates, built the same way by the
engine and by the auditor: the seeded generator, cross-round per-client state (FoolsGold's
update history), and the server's root-data update (FLTrust)."""

from __future__ import annotations

import torch

from fedledger.aggregation import AggregationContext, AggregationResult
from fedledger.client.local import local_update
from fedledger.config import ExperimentConfig
from fedledger.protocol.seeds import aggregation_generator, client_generator

ROOT_DATA_RULES = {"fltrust"}
ROOT_CLIENT = -3  # the server's generator stream for its root-data training


class RuleContext:
    def __init__(
        self,
        cfg: ExperimentConfig,
        *,
        model: torch.nn.Module | None = None,
        x_train: torch.Tensor | None = None,
        y_train: torch.Tensor | None = None,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.state: dict[str, dict[int, torch.Tensor]] = {}
        self.root: tuple[torch.Tensor, torch.Tensor] | None = None
        if cfg.aggregation.name in ROOT_DATA_RULES:
            if model is None or x_train is None or y_train is None:
                raise ValueError("FLTrust needs the model and the training data for its root set")
            g = torch.Generator().manual_seed(cfg.seed ^ 0x5007)
            idx = torch.randperm(len(y_train), generator=g)[: cfg.aggregation.root_samples]
            self.root = (x_train[idx], y_train[idx])

    def context(self, rnd: int, used: list[int], params: torch.Tensor) -> AggregationContext:
        history = {
            key: torch.stack([rows.get(c, torch.zeros_like(params)) for c in used])
            for key, rows in self.state.items()
        }
        reference = None
        if self.root is not None and self.model is not None:
            reference = local_update(
                self.cfg,
                self.model,
                params,
                *self.root,
                generator=client_generator(seed=self.cfg.seed, round=rnd, client=ROOT_CLIENT),
            ).delta
        return AggregationContext(
            round=rnd,
            generator=aggregation_generator(seed=self.cfg.seed, round=rnd),
            reference=reference,
            global_params=params,
            history=history,
        )

    def update(self, used: list[int], result: AggregationResult) -> None:
        """Keep the rule's returned per-row state, by client id, for the next rounds."""
        for key, rows in (result.state or {}).items():
            if isinstance(rows, torch.Tensor) and rows.dim() == 2 and rows.shape[0] == len(used):
                table = self.state.setdefault(key, {})
                for k, c in enumerate(used):
                    table[c] = rows[k].clone()
