"""Setting a federation up from a config: data, partition, model, rule, adversary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedledger.aggregation import AggregationRule, create_rule
from fedledger.attacks.adversary import Adversary
from fedledger.config import ExperimentConfig
from fedledger.data import Dataset, load_dataset, partition
from fedledger.ledger.contract import LedgerParams
from fedledger.models import create_model, get_flat_params
from fedledger.protocol.rulectx import RuleContext
from fedledger.protocol.selection import selection_salt


@dataclass
class Federation:
    cfg: ExperimentConfig
    data: Dataset
    parts: list[np.ndarray]
    client_x: list[torch.Tensor]
    client_y: list[torch.Tensor]
    model: torch.nn.Module
    initial_params: torch.Tensor
    rule: AggregationRule
    adversary: Adversary | None
    rule_context: RuleContext

    @property
    def dim(self) -> int:
        return self.initial_params.numel()


def load_data(cfg: ExperimentConfig) -> Dataset:
    """The run's data set, split into train and test."""
    return load_dataset(
        cfg.data.name,
        seed=cfg.seed,
        data_dir=cfg.data.data_dir,
        download=cfg.data.download,
        path=cfg.data.path,
        label_column=cfg.data.label_column,
        test_fraction=cfg.data.test_fraction,
        max_train_samples=cfg.data.max_train_samples,
        max_test_samples=cfg.data.max_test_samples,
        params=cfg.data.params,
    )


def population_parts(cfg: ExperimentConfig, data: Dataset) -> list[np.ndarray]:
    """The training indices of every worker of the crowd (``federation.population`` of them
    when set, else ``num_clients``)."""
    return partition(
        data.y_train,
        num_clients=cfg.federation.crowd,
        scheme=cfg.data.partition,
        seed=cfg.seed,
        alpha=cfg.data.alpha,
        shards_per_client=cfg.data.shards_per_client,
        sigma=cfg.data.sigma,
        min_size=cfg.data.min_size,
        params=cfg.data.partition_params,
    )


def build_federation(cfg: ExperimentConfig) -> Federation:
    """Everything a run needs before its first round. Bad settings fail here, before any
    transaction is sent."""
    fed = cfg.federation
    data = load_data(cfg)
    parts = population_parts(cfg, data)
    if fed.members is not None:  # the workers of the crowd who took part, in order
        parts = [parts[i] for i in fed.members]
    rule = create_rule(cfg.aggregation.name, cfg.aggregation.params(), num_clients=fed.per_round)
    torch.manual_seed(cfg.seed)
    model = create_model(
        cfg.model.name,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        **cfg.model.params(),
    )
    adversary = None
    if cfg.attack is not None:
        adversary = Adversary(
            cfg.attack,
            num_clients=fed.num_clients,
            seed=cfg.seed,
            num_classes=data.num_classes,
            input_shape=data.input_shape,
        )
    return Federation(
        cfg=cfg,
        data=data,
        parts=parts,
        client_x=[data.x_train[torch.as_tensor(p)] for p in parts],
        client_y=[data.y_train[torch.as_tensor(p)] for p in parts],
        model=model,
        initial_params=get_flat_params(model),
        rule=rule,
        adversary=adversary,
        rule_context=RuleContext(cfg, model=model, x_train=data.x_train, y_train=data.y_train),
    )


def ledger_params(
    cfg: ExperimentConfig, *, initial_model_hash: bytes, aggregator: str
) -> LedgerParams:
    """The contract's deployment parameters for a run (the audit re-derives and compares them)."""
    com = cfg.committee_enabled
    return LedgerParams(
        config_hash=cfg.digest(),
        initial_model_hash=initial_model_hash,
        selection_salt=selection_salt(cfg.seed),
        aggregator=aggregator,
        clients_per_round=cfg.federation.per_round,
        committee_size=com.size if com is not None else 0,
        max_flags=cfg.reputation.max_flags or 0,
        submission_window=cfg.ledger.submission_window,
        round_timeout=cfg.ledger.round_timeout,
    )
