"""Experiment configuration: TOML in, validated pydantic models out.

``load_config(path, overrides=["federation.rounds=5"])`` reads the file, applies ``--set``
overrides (values parsed as TOML literals, falling back to strings), and validates. Unknown keys
and wrong types become a :class:`ConfigError` that names the key and what was expected.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
import typing
from pathlib import Path
from typing import Any, Literal

import tomli_w
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# light modules only (pydantic and the standard library): a configuration is checked before
# torch, web3 and the engine are imported, so that a mistake is reported at once
from fedledger.aggregation.registry import RULES
from fedledger.attacks.config import AttackConfig, attack_params_deferred
from fedledger.errors import ConfigError
from fedledger.incentives.config import IncentivesConfig, TaskConfig
from fedledger.netsim.config import NetworkConfig, check_registered


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def registered(name: str, *, builtin: tuple[str, ...], module: str, table: str) -> list[str] | None:
    """None when ``name`` is a built-in or was registered by code already imported (a plugin
    registers into ``module.table``, which is then loaded); else the names there are. Never
    imports ``module``: a configuration is checked before torch is."""
    loaded = sys.modules.get(module)
    extra = sorted(getattr(loaded, table).names()) if loaded is not None else []
    if name in builtin or name in extra:
        return None
    return sorted(set(builtin) | set(extra))


def check_name(
    kind: str, name: str, *, builtin: tuple[str, ...], module: str, table: str
) -> str:
    """``name`` if it is a registered ``kind``; else a ValueError listing the names there are
    and how to add one."""
    known = registered(name, builtin=builtin, module=module, table=table)
    if known is not None:
        raise ValueError(
            f"unknown {kind} {name!r}; expected one of: {', '.join(known)} (one of your own: "
            "register it in a module the config's plugins list names, docs/extending.md)"
        )
    return name


BUILTIN_MODELS = ("cnn", "logreg", "mlp")  # fedledger.models; a test keeps the lists in step
BUILTIN_DATASETS = ("csv", "digits", "mnist", "npz")  # fedledger.data.datasets
BUILTIN_PARTITIONS = ("dirichlet", "iid", "quantity_skew", "shards")  # fedledger.data.partition
_DATA, _PARTS = "fedledger.data.datasets", "fedledger.data.partition"  # their registries' modules
_MODELS, _TRAINERS = "fedledger.models.registry", "fedledger.client.trainers"


class DataConfig(Section):
    name: str = "digits"
    params: dict[str, Any] | None = Field(None, description="a plugin data set's own parameters")
    data_dir: str | None = None
    download: bool = False  # mnist only: fetch missing files with torchvision (online)
    path: str | None = None
    label_column: str = "label"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    max_train_samples: int | None = Field(None, gt=0)
    max_test_samples: int | None = Field(None, gt=0)
    partition: str = "iid"
    alpha: float = Field(0.5, gt=0)
    shards_per_client: int = Field(2, ge=1)
    sigma: float = Field(1.0, gt=0)
    min_size: int = Field(1, ge=1)
    partition_params: dict[str, Any] | None = Field(
        None, description="a plugin partition scheme's own parameters"
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_name(
            "dataset", name, builtin=BUILTIN_DATASETS, module=_DATA, table="DATASETS"
        )

    @field_validator("partition")
    @classmethod
    def _check_partition(cls, name: str) -> str:
        return check_name(
            "partition", name, builtin=BUILTIN_PARTITIONS, module=_PARTS, table="SCHEMES"
        )


class ModelConfig(BaseModel):
    """``name`` picks a registered model; every other key is a parameter of that model, checked
    against its config dataclass when the model is built (``hidden = [64]`` for mlp;
    ``channels``, ``kernel_size``, ``hidden`` for cnn; a plugin's own)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str = "mlp"

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_name(
            "model", name, builtin=BUILTIN_MODELS, module=_MODELS, table="MODELS"
        )

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FederationConfig(Section):
    num_clients: int = Field(10, ge=1)
    clients_per_round: int | None = Field(None, ge=1)
    fraction: float | None = Field(None, gt=0, le=1)
    rounds: int = Field(20, ge=1)
    local_epochs: int = Field(2, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(0.05, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    trainer: str = Field("default", description="the client training loop (a plugin's, or default)")
    trainer_params: dict[str, Any] | None = Field(
        None, description="the training loop's own parameters"
    )
    proximal_mu: float = Field(
        0.0,
        ge=0,
        description="FedProx's proximal weight mu (Li et al. 2020); 0: plain local training",
    )
    backend: Literal["sequential", "vectorised"] = Field(
        "sequential",
        description="client training: one client after the other (the reference), or all "
        "clients of a round as one batched computation (client/vectorised.py)",
    )
    vectorised_chunk: int | None = Field(
        None,
        ge=1,
        description="clients the vectorised backend trains together at most (None: as many "
        "as fit in 512 MiB)",
    )
    # the crowd a task was posted to: the data is split among `population` workers, of whom
    # `members` (ascending) took part; written by a task's participation, see docs/incentives.md
    population: int | None = Field(None, ge=1)
    members: list[int] | None = None

    @field_validator("trainer")
    @classmethod
    def _check_trainer(cls, name: str) -> str:
        return check_name(
            "training loop", name, builtin=("default",), module=_TRAINERS, table="TRAINERS"
        )

    @model_validator(mode="after")
    def _check_backend(self) -> FederationConfig:
        if self.backend == "vectorised" and self.trainer != "default":
            raise ValueError(
                f"federation.backend = 'vectorised' runs the default training loop only, not "
                f"the plugin loop {self.trainer!r} (its Python code cannot be batched across "
                "clients); set federation.backend = 'sequential'"
            )
        return self

    @model_validator(mode="after")
    def _check_selection(self) -> FederationConfig:
        if (self.population is None) != (self.members is None):
            raise ValueError("federation.population and federation.members go together")
        if self.members is not None and self.population is not None:
            m = self.members
            if len(m) != self.num_clients:
                raise ValueError(
                    f"federation.members lists {len(m)} workers, but num_clients is "
                    f"{self.num_clients}"
                )
            if any(b <= a for a, b in zip(m, m[1:], strict=False)) or not (
                0 <= m[0] and m[-1] < self.population
            ):
                raise ValueError(
                    "federation.members must be distinct worker indices in ascending order, "
                    f"each below federation.population ({self.population})"
                )
        if self.clients_per_round is not None and self.fraction is not None:
            raise ValueError("set clients_per_round or fraction, not both")
        if self.clients_per_round is not None and self.clients_per_round > self.num_clients:
            raise ValueError(
                f"clients_per_round ({self.clients_per_round}) exceeds num_clients "
                f"({self.num_clients})"
            )
        return self

    @property
    def crowd(self) -> int:
        """Workers the data is split among: the crowd when a task's participation set it."""
        return self.population or self.num_clients

    @property
    def per_round(self) -> int:
        if self.clients_per_round is not None:
            return self.clients_per_round
        if self.fraction is not None:
            return max(1, round(self.fraction * self.num_clients))
        return self.num_clients


class AggregationConfig(BaseModel):
    """``name`` picks the rule; every other key is a parameter of that rule, checked by it."""

    model_config = ConfigDict(extra="allow")
    name: str = "fedavg"
    root_samples: int = Field(100, ge=1, description="size of FLTrust's clean root data set")

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if name not in RULES:
            raise ValueError(f"unknown rule {name!r}; expected one of: {', '.join(RULES.names())}")
        return name

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LedgerConfig(Section):
    enabled: bool = True
    url: str = ""  # empty: the embedded py-evm chain; otherwise a JSON-RPC endpoint
    keys: str = Field(
        "simulated",
        description="'simulated' (seed-derived, local chains only, insecure) or 'keystore:DIR'",
    )
    password_file: str | None = Field(
        None, description="file holding the keystore password (else $FEDLEDGER_KEYSTORE_PASSWORD)"
    )
    submission_window: int = Field(
        2, ge=1, le=10_000, description="blocks after the last post in which commitments count"
    )
    round_timeout: int = Field(
        256, ge=2, description="blocks after opening after which anyone may abort a round"
    )
    max_rounds_ahead: int = Field(
        8,
        ge=0,
        le=64,
        description="rounds the simulation may train ahead of the chain (0: lockstep, clients "
        "check each global model against the chain before training)",
    )

    @model_validator(mode="after")
    def _check(self) -> LedgerConfig:
        if self.round_timeout <= self.submission_window:
            raise ValueError(
                f"round_timeout ({self.round_timeout}) must exceed submission_window "
                f"({self.submission_window})"
            )
        if self.keys != "simulated" and not self.keys.startswith("keystore:"):
            raise ValueError(f"keys must be 'simulated' or 'keystore:DIR', got {self.keys!r}")
        return self


class CommitteeConfig(Section):
    """Committee validation (BFLC, Li et al. 2020; VBFL, Chen et al. 2021): each round a seeded,
    rotating committee scores every candidate update on its members' own data and votes."""

    size: int = Field(5, ge=1, le=255)
    tolerance: float = Field(0.5, ge=0, description="accept if loss <= (1 + tolerance) * median")


class ReputationConfig(Section):
    """Flags (rule exclusions, rejections, committee rejections) accumulate on-chain; a client
    flagged ``max_flags`` times is not selected again."""

    max_flags: int | None = Field(None, ge=1)


class AsyncConfig(Section):
    """Asynchronous aggregation in simulated time: ``buffer_size = 1`` is FedAsync (Xie et al.
    2019), larger is FedBuff (Nguyen et al. 2022). Needs a [network] section."""

    buffer_size: int = Field(1, ge=1)
    concurrency: int = Field(10, ge=1)
    alpha: float = Field(0.6, gt=0, le=1, description="FedAsync mixing weight")
    staleness: Literal["constant", "polynomial", "hinge"] = "polynomial"
    server_lr: float = Field(1.0, gt=0, description="FedBuff server learning rate")


class ServerConfig(Section):
    """The server's optimiser over the round's aggregate Δ, a pseudo-gradient (FedOpt, Reddi et
    al. 2021, Algorithm 2; FedAvgM, Hsu et al. 2019): fedledger/aggregation/server_opt.py. Keys
    left unset take the optimiser's documented defaults (docs/strategies.md); a key the
    optimiser does not take is an error when the run starts."""

    optimizer: Literal["sgd", "momentum", "fedadam", "fedyogi", "fedadagrad"] = "sgd"
    lr: float | None = Field(None, gt=0, description="server learning rate eta")
    momentum: float | None = Field(None, ge=0, lt=1, description="FedAvgM's server momentum")
    beta1: float | None = Field(None, ge=0, lt=1)
    beta2: float | None = Field(None, ge=0, lt=1)
    tau: float | None = Field(None, gt=0, description="adaptivity (Reddi's tau)")


class EvaluationConfig(Section):
    """Federated evaluation (Flower's ``fraction_evaluate``): each round a seeded share of all
    clients evaluates the new global model on its own training data."""

    fraction: float = Field(gt=0, le=1)


class PrivacyConfig(Section):
    """User-level DP-FedAvg (McMahan et al. 2018): each used update clipped to ``clip_norm``,
    Gaussian noise of standard deviation ``noise_multiplier`` x ``clip_norm`` on their sum, ε
    from dp-accounting (fedledger/privacy/, docs/privacy.md). Give ``noise_multiplier`` or
    ``target_epsilon`` (the run then calibrates z to reach it after federation.rounds)."""

    clip_norm: float = Field(gt=0, description="L2 bound C of each client's update")
    noise_multiplier: float | None = Field(None, gt=0, description="z: noise std / clip_norm")
    target_epsilon: float | None = Field(
        None, gt=0, description="calibrate z so that ε after all rounds is at most this"
    )
    delta: float = Field(gt=0, lt=1, description="δ of (ε, δ); below 1 / num_clients")
    accountant: Literal["rdp", "pld", "best"] = Field(
        "rdp", description="rdp (a bound for fixed-size sampling), pld or best (the smaller)"
    )
    max_epsilon: float | None = Field(
        None, gt=0, description="budget: a round that would take ε above it does not run"
    )

    @model_validator(mode="after")
    def _check_noise(self) -> PrivacyConfig:
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError(
                "[privacy] needs exactly one of noise_multiplier (z) and target_epsilon (z is "
                "then calibrated to it)"
            )
        return self


class ExperimentConfig(Section):
    seed: int = 0
    name: str = "experiment"
    plugins: list[str] = Field(
        default_factory=list,
        description="modules that register models, datasets, partitions, rules, attacks or "
        "training loops, imported before validation (docs/extending.md)",
    )
    threads: int = Field(1, ge=1, description="torch intra-op threads; fixed for reproducibility")
    data: DataConfig = Field(default_factory=lambda: DataConfig())
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    federation: FederationConfig = Field(default_factory=lambda: FederationConfig())
    aggregation: AggregationConfig = Field(default_factory=lambda: AggregationConfig())
    ledger: LedgerConfig = Field(default_factory=lambda: LedgerConfig())
    attack: AttackConfig | None = None
    committee: CommitteeConfig | None = None
    network: NetworkConfig | None = None
    asynchronous: AsyncConfig | None = None
    reputation: ReputationConfig = Field(default_factory=lambda: ReputationConfig())
    task: TaskConfig | None = None
    incentives: IncentivesConfig | None = None
    server: ServerConfig | None = None
    evaluation: EvaluationConfig | None = None
    privacy: PrivacyConfig | None = None

    @model_validator(mode="after")
    def _check_strategies(self) -> ExperimentConfig:
        if self.asynchronous is not None:
            for section, value in (("server", self.server), ("evaluation", self.evaluation)):
                if value is not None:
                    raise ValueError(
                        f"[{section}] applies to synchronous rounds only; the asynchronous "
                        f"engine mixes each update itself: remove [{section}] or [asynchronous]"
                    )
        return self

    @model_validator(mode="after")
    def _check_market(self) -> ExperimentConfig:
        if (self.task is None) != (self.incentives is None):
            raise ValueError(
                "a task market needs both a [task] section (its terms) and an [incentives] "
                "section (how contributions are scored)"
            )
        if self.task is not None:
            if not self.ledger.enabled:
                raise ValueError("a task market runs on the ledger: set ledger.enabled = true")
            if self.asynchronous is not None:
                raise ValueError("a task market needs synchronous rounds: remove [asynchronous]")
            self.task.check_against(rounds=self.federation.rounds)
            assert self.incentives is not None
            rational = self.incentives.participation == "rational"
            if not rational and self.incentives.cost_high > self.task.cost_rate_cap:
                raise ValueError(
                    f"incentives.cost_high ({self.incentives.cost_high}) exceeds "
                    f"task.cost_rate_cap ({self.task.cost_rate_cap}): with participation = "
                    "'all' every worker joins, so the terms must cover every worker's cost; "
                    "set incentives.participation = 'rational' to let workers stay out"
                )
            if rational and self.federation.per_round != self.federation.num_clients:
                raise ValueError(
                    "incentives.participation = 'rational' assumes that every worker who joins "
                    "trains in every round: leave federation.clients_per_round and fraction unset"
                )
            need = 3 * self.federation.num_clients + 5
            if self.task.join_period < need:
                raise ValueError(
                    f"task.join_period ({self.task.join_period} blocks) is too short for "
                    f"{self.federation.num_clients} workers to join on a chain that mines a "
                    f"block per transaction (three each): at least {need}"
                )
        return self

    @field_validator("network")
    @classmethod
    def _check_network(cls, network: NetworkConfig | None) -> NetworkConfig | None:
        if network is not None:
            check_registered(network)  # consensus and selection by name, PBFT's faults
        return network

    @model_validator(mode="after")
    def _check_asynchronous(self) -> ExperimentConfig:
        if self.asynchronous is not None and self.network is None:
            raise ValueError(
                "[asynchronous] runs in the simulated time of a network: add a [network] section"
            )
        if self.asynchronous is not None and self.ledger.enabled:
            raise ValueError(
                "[asynchronous] runs without the ledger for now: set ledger.enabled = false"
            )
        return self

    @model_validator(mode="after")
    def _check_privacy(self) -> ExperimentConfig:
        """DP-FedAvg's sensitivity bound and its sampling assumption hold only where every
        used update enters a plain sum and the round's clients are m of N drawn uniformly."""
        p = self.privacy
        if p is None:
            return self
        n = self.federation.num_clients
        if p.delta >= 1 / n:
            raise ValueError(
                f"privacy.delta ({p.delta:g}) must be below 1 / num_clients ({1 / n:g}): a δ "
                "that large allows a mechanism that publishes one client's data outright"
            )
        refused = [
            (
                self.aggregation.name != "fedavg",
                f"aggregation rule {self.aggregation.name!r}: DP-FedAvg replaces FedAvg's mean "
                "with a noised sum of clipped updates; a robust rule that selects or reweights "
                "updates by their values has no sensitivity bound the accountant could use. "
                "Set aggregation.name = 'fedavg'",
            ),
            (
                self.committee_enabled is not None,
                "[committee]: the committee's votes depend on its members' data and decide "
                "which updates enter the sum, so one client can change many summands",
            ),
            (
                self.attack is not None,
                "[attack]: a model-poisoning attack crafts its updates from the benign ones, so "
                "one client's data can change several summands; not accounted yet",
            ),
            (
                self.reputation.max_flags is not None,
                "reputation.max_flags: excluding flagged clients shrinks the pool, so the "
                "round's sampling is no longer m of num_clients",
            ),
            (
                self.network is not None,
                "[network]: its selection policies and availability do not draw m of "
                "num_clients uniformly, which the accountant assumes",
            ),
            (
                self.asynchronous is not None,
                "[asynchronous]: the asynchronous engine mixes single updates; DP applies to "
                "synchronous rounds",
            ),
            (
                self.task is not None,
                "[task]: a task market publishes per-client scores computed from the "
                "un-noised updates",
            ),
        ]
        for bad, why in refused:
            if bad:
                raise ValueError(f"[privacy] cannot be combined with {why}")
        return self

    @property
    def committee_enabled(self) -> CommitteeConfig | None:
        """The committee settings when the vote filter is on (``[committee]`` or rule ``committee``)."""
        if self.committee is not None:
            return self.committee
        return CommitteeConfig() if self.aggregation.name == "committee" else None

    def to_toml(self) -> str:
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))

    def digest(self) -> bytes:
        """SHA-256 of the resolved TOML: recorded on-chain at deployment."""
        return hashlib.sha256(self.to_toml().encode()).digest()


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"federation.rounds=5"`` -> (["federation", "rounds"], 5)."""
    if "=" not in item:
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return raw


def config_from_dict(
    raw: dict[str, Any], *, source: str = "config", overrides: list[str] | None = None
) -> ExperimentConfig:
    """The validated config; a ConfigError naming each bad key, and the ``--set`` item that
    gave it where one did (``overrides``). The config's ``plugins`` (and the installed ones)
    are imported first, so that the names they register validate."""
    raw = import_plugins(raw)
    try:
        with attack_params_deferred():  # everything cheap first: no torch for a typo
            cfg = ExperimentConfig.model_validate(raw)
        if cfg.attack is not None:
            try:
                cfg.attack.build()  # the attack's own parameters, by its class
            except ConfigError as exc:
                problem = ("attack.params", str(exc))
                raise ConfigError(_describe([problem], source, overrides or [])) from None
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(exc, source=source, overrides=overrides or [])
        ) from None
    return cfg


PATH_KEYS = (("data", "path"), ("data", "data_dir"), ("ledger", "password_file"))
KEYSTORE_PREFIX = "keystore:"


def anchor_paths(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``raw`` (a config file's table) with its relative paths made absolute against the
    folder of the file, where they were written: ``data.path``, ``data.data_dir``,
    ``ledger.password_file`` and the folder of ``ledger.keys = "keystore:DIR"``. (``--set``
    values are applied afterwards and stay relative to the working directory.)"""
    base = folder.resolve()
    for section, key in PATH_KEYS:
        table = raw.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str) and table[key]:
            if not Path(table[key]).expanduser().is_absolute():
                table[key] = str(base / table[key])
    ledger = raw.get("ledger")
    if isinstance(ledger, dict) and isinstance(ledger.get("keys"), str):
        folder_ = ledger["keys"].removeprefix(KEYSTORE_PREFIX)
        relative = folder_ != ledger["keys"] and not Path(folder_).expanduser().is_absolute()
        if folder_ and relative:
            ledger["keys"] = KEYSTORE_PREFIX + str(base / folder_)
    plugins = raw.get("plugins")
    if isinstance(plugins, list):  # a module next to the file is recorded by its path
        from fedledger.plugins import resolve_plugin

        raw["plugins"] = [resolve_plugin(e, base) if isinstance(e, str) else e for e in plugins]
    return raw


def import_plugins(raw: dict[str, Any]) -> dict[str, Any]:
    """Import the plugins a config table names and the installed ones; ``raw`` with each
    plugin as it is recorded (a module found in the working directory by its path, as
    :func:`anchor_paths` records one next to a config file). A ConfigError when one fails."""
    from fedledger.plugins import load_plugins, resolve_plugin

    entries = raw.get("plugins", [])
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError(f"plugins must be a list of module names or .py paths, got {entries!r}")
    resolved = [resolve_plugin(e, Path.cwd()) for e in entries]
    load_plugins(resolved)
    return {**raw, "plugins": resolved} if entries else raw


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file's table, its relative paths anchored to its folder; a ConfigError when
    it is missing or not TOML."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory; pass the path of a TOML file in it")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p} as UTF-8 text: {exc}") from None
    return anchor_paths(raw, p.parent)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """The validated config of file ``path`` with ``overrides`` (``--set`` items) applied;
    relative paths in the file are relative to its folder."""
    p = Path(path)
    raw = read_config_file(p)
    items = overrides or []
    return config_from_dict(apply_overrides(raw, items), source=str(p), overrides=items)


def format_validation_error(
    exc: ValidationError, *, source: str, overrides: list[str] | None = None
) -> str:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError) and cause.problems:  # a section's own, key by key
            problems += cause.problems
        elif err["type"] == "model_type":  # a value where a section belongs
            got = err.get("input")
            problems.append((loc, f"expected a table (the [{loc}] section), got {got!r}"))
        elif err["type"] == "extra_forbidden":
            close = _closest_key(err["loc"])
            hint = f"did you mean {close!r}? (docs/configuration.md lists every key)"
            spelling = "check the spelling against docs/configuration.md"
            problems.append((loc, f"unknown key; {hint if close else spelling}"))
        else:
            got = err.get("input")
            msg = str(err["msg"]).removeprefix("Value error, ")  # pydantic's wording, not ours
            named = isinstance(got, str) and repr(got) in msg  # the message quotes it already
            shown = "" if isinstance(got, dict) or named else f" (got {got!r})"
            problems.append((loc, msg + shown))
    return _describe(problems, source, overrides or [])


def _closest_key(loc: tuple[int | str, ...]) -> str | None:
    """The key a misspelt one (at ``loc``) most likely meant, if any is close."""
    model: type[BaseModel] | None = ExperimentConfig
    for part in loc[:-1]:  # down the sections to the one that holds the key
        field = model.model_fields.get(str(part)) if model is not None else None
        kinds = typing.get_args(field.annotation) or (field.annotation,) if field else ()
        model = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
    if model is None:
        return None
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return ".".join([*map(str, loc[:-1]), close[0]]) if close else None


def _describe(problems: list[tuple[str, str]], source: str, overrides: list[str]) -> str:
    """``invalid configuration in SOURCE:`` and a line per (key, problem), each naming the
    --set item that gave the key (or a section above it), if one did."""
    given = {".".join(parse_override(o)[0]): o for o in overrides}
    lines = [f"invalid configuration in {source}:"]
    for key, problem in problems:
        item = next(
            (
                o
                for k, o in given.items()
                if key and (f"{key}.".startswith(f"{k}.") or f"{k}.".startswith(f"{key}."))
            ),
            None,
        )
        origin = f" [from --set {item}]" if item else ""
        if problem.startswith("unknown key;"):  # the key is the news
            lines.append(f"  unknown key {key!r}; {problem.removeprefix('unknown key; ')}{origin}")
        else:
            lines.append(f"  {key}: {problem}{origin}" if key else f"  {problem}{origin}")
    return "\n".join(lines)
