"""The ``[network]`` config section: pydantic models (``extra="forbid"``), read into ConfigError.

Every field has a unit in its name or docstring; defaults describe a small BlockFL-like
network (Kim, Park, Bennis, Kim 2019): homogeneous devices, ten equal PoW miners.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedledger.errors import ConfigError

SECTION = "network"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(_Model):
    """A wireless link (uplink or downlink): Shannon rate over AWGN, optional Rayleigh fading."""

    bandwidth_hz: float = Field(default=1e6, gt=0)
    tx_power_dbm: float = 23.0
    noise_psd_dbm_hz: float = -174.0
    noise_figure_db: float = Field(default=0.0, ge=0)
    path_loss: Literal["log_distance", "exponent"] = "log_distance"
    """``log_distance``: PL(dB) = reference_loss_db + 10 n log10(d / 1 m); ``exponent``: d^-n."""
    path_loss_exponent: float = Field(default=3.0, gt=0)
    reference_loss_db: float = 30.0
    snr_db: float | None = None
    """When set, the mean SNR (dB) of every device on this link; distance and power are ignored."""
    fading: Literal["none", "rayleigh"] = "none"
    frame_bytes: int = Field(default=1500, gt=0)
    frame_error_rate: float = Field(default=0.0, ge=0, lt=1)
    max_retransmissions: int = Field(default=8, ge=0)


class LinkConfig(_Model):
    """A wired or fixed-rate link between miners (block exchange and propagation)."""

    bandwidth_hz: float = Field(default=2e6, gt=0)
    snr_db: float = 20.0
    latency_s: float = Field(default=0.0, ge=0)
    hops: int = Field(default=1, ge=1)
    """Gossip diameter: a block is relayed (store and forward) over this many links."""


class TierConfig(_Model):
    """A class of devices: share of the population, compute speed, radio and reliability."""

    name: str = "device"
    share: float = Field(default=1.0, gt=0, le=1)
    flops: float = Field(default=1e9, gt=0)
    """Sustained training speed, FLOP/s."""
    distance_m: tuple[float, float] = (50.0, 50.0)
    """Distance to the base station / miner, drawn uniformly in [lo, hi] metres."""
    bandwidth_hz: float | None = Field(default=None, gt=0)
    tx_power_dbm: float | None = None
    snr_db: float | None = None
    availability: float = Field(default=1.0, gt=0, le=1)
    """Probability that a device is online when a round starts."""
    dropout: float = Field(default=0.0, ge=0, lt=1)
    """Probability that an online participant fails during the round (never reports)."""

    @model_validator(mode="after")
    def _distance(self) -> TierConfig:
        lo, hi = self.distance_m
        if not (0 < lo <= hi):
            raise ValueError(f"distance_m must be [lo, hi] with 0 < lo <= hi, got {[lo, hi]}")
        return self


class PbftConfig(_Model):
    """PBFT among the miners (Castro & Liskov 1999): n = num_miners replicas, f faulty."""

    faulty: int | None = Field(default=None, ge=0)
    """f, the faults tolerated; None = the largest f with n >= 3f + 1."""
    crashed: int = Field(default=0, ge=0)
    """Replicas that actually stay silent (<= f)."""
    message_bytes: int = Field(default=256, gt=0)
    jitter_s: float = Field(default=0.0, ge=0)
    """Mean of an exponential per-message delay added to the link latency."""


class CommitteeConfig(_Model):
    """The engine's committee vote: members fetch and score the updates, then vote on-chain."""

    size: int = Field(default=5, ge=1)
    score_flops_per_update: float = Field(default=1e7, ge=0)
    vote_bytes: int = Field(default=200, gt=0)
    jitter_s: float = Field(default=0.0, ge=0)


class HierarchyConfig(_Model):
    """Layered chains: regional chains aggregate their devices and anchor into the main chain."""

    regions: int = Field(default=4, ge=1)
    regional_block_rate: float = Field(default=1.0, gt=0)
    regional_link: LinkConfig = Field(
        default_factory=lambda: LinkConfig(bandwidth_hz=1e7, snr_db=20.0)
    )
    anchor_bytes: int = Field(default=300, gt=0)


class NetworkConfig(_Model):
    """The whole ``[network]`` section."""

    # --- population and FL workload (the engine passes the real values per round) ---
    num_devices: int = Field(default=100, ge=1)
    clients_per_round: int | None = Field(default=None, ge=1)
    update_bytes: int = Field(default=20_000, gt=0)
    flops_per_sample: float = Field(default=1e5, gt=0)
    samples_per_device: int = Field(default=200, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    deadline_s: float | None = Field(default=None, gt=0)
    selection: str = "random"
    tiers: tuple[TierConfig, ...] = Field(default_factory=lambda: (TierConfig(),))
    uplink: ChannelConfig = Field(default_factory=ChannelConfig)
    downlink: ChannelConfig = Field(
        default_factory=lambda: ChannelConfig(bandwidth_hz=1e7, tx_power_dbm=40.0)
    )
    # --- miners and blocks ---
    consensus: str = "pow"
    num_miners: int = Field(default=10, ge=1)
    hash_power: tuple[float, ...] = ()
    """Relative hash power (PoW) or stake (PoS) of each miner; empty = equal."""
    miner_flops: float = Field(default=1e10, gt=0)
    verify_flops_per_update: float = Field(default=1e7, ge=0)
    miner_link: LinkConfig = Field(default_factory=LinkConfig)
    block_rate: float = Field(default=0.5, gt=0)
    """lambda: network-wide block arrival rate (PoW), slot rate (PoS), blocks/s."""
    block_size: int = Field(default=100, ge=1)
    """Maximum transactions per block."""
    tx_bytes: int | None = Field(default=None, gt=0)
    """Bytes per transaction in the chain model; None = update_bytes (BlockFL: tx = update)."""
    header_bytes: int = Field(default=80, ge=0)
    tx_rate: float | None = Field(default=None, gt=0)
    """Transaction arrival rate (tx/s) for TPS and queues; None = always a full mempool."""
    fork_policy: Literal["repeat_round", "remine"] = "repeat_round"
    """After a fork, BlockFL repeats the round (``repeat_round``); ``remine`` re-mines the block."""
    confirmations: int = Field(default=2, ge=1)
    # --- simulation lengths ---
    blocks: int = Field(default=20_000, ge=10)
    rounds: int = Field(default=2_000, ge=1)
    pbft: PbftConfig = Field(default_factory=PbftConfig)
    committee: CommitteeConfig = Field(default_factory=CommitteeConfig)
    hierarchy: HierarchyConfig = Field(default_factory=HierarchyConfig)

    @model_validator(mode="after")
    def _consistent(self) -> NetworkConfig:
        if self.hash_power and len(self.hash_power) != self.num_miners:
            raise ValueError(
                f"hash_power has {len(self.hash_power)} entries but num_miners is "
                f"{self.num_miners}; give one share per miner or leave it empty for equal shares"
            )
        if any(h <= 0 for h in self.hash_power):
            raise ValueError("hash_power entries must all be > 0")
        total = sum(t.share for t in self.tiers)
        if not self.tiers or not math.isclose(total, 1.0, rel_tol=1e-6):
            raise ValueError(f"tier shares must sum to 1, got {total:g}")
        if self.clients_per_round is not None and self.clients_per_round > self.num_devices:
            raise ValueError(
                f"clients_per_round={self.clients_per_round} exceeds num_devices={self.num_devices}"
            )
        return self

    @property
    def chain_tx_bytes(self) -> int:
        return self.tx_bytes if self.tx_bytes is not None else self.update_bytes

    @property
    def shares(self) -> tuple[float, ...]:
        """Normalised hash power (or stake) per miner."""
        raw = self.hash_power or (1.0,) * self.num_miners
        total = sum(raw)
        return tuple(h / total for h in raw)

    @property
    def block_bytes(self) -> int:
        """Bytes of a full block of the chain model."""
        return self.header_bytes + self.block_size * self.chain_tx_bytes


def _describe(err: Mapping[str, Any], prefix: str) -> str:
    loc = ".".join(str(p) for p in (prefix, *err.get("loc", ())) if p != "")
    kind = str(err.get("type", ""))
    msg = str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        msg = "unknown key; check the spelling against docs/netsim.md"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = err.get("input")
    tail = (
        "" if kind in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
    )
    return f"{loc}: {msg}{tail}"


def validation_to_config_error(exc: ValidationError, prefix: str = SECTION) -> ConfigError:
    """Turn a pydantic error into a ConfigError whose lines name each field and what it expects."""
    lines = [_describe(e, prefix) for e in exc.errors()]
    return ConfigError("invalid network configuration:\n  " + "\n  ".join(lines))


def load_network_config(section: Mapping[str, Any] | NetworkConfig | None) -> NetworkConfig:
    """Validate a ``[network]`` mapping (as read from TOML); raise ConfigError on any problem."""
    if isinstance(section, NetworkConfig):
        return section
    try:
        cfg = NetworkConfig.model_validate(dict(section or {}))
    except ValidationError as exc:
        raise validation_to_config_error(exc) from None
    check_registered(cfg)
    return cfg


def check_registered(cfg: NetworkConfig) -> None:
    """ConfigError unless the consensus and the selection policy are registered ones and PBFT's
    fault counts fit its miners (the checks that take the simulators' modules, and numpy)."""
    from fedledger.netsim.consensus import CONSENSUS
    from fedledger.netsim.scheduling import POLICIES

    for key, value, registry in (
        ("consensus", cfg.consensus, CONSENSUS),
        ("selection", cfg.selection, POLICIES),
    ):
        if value not in registry:
            problem = (
                f"unknown {registry.kind} {value!r}; expected one of: {', '.join(registry.names())}"
            )
            where = f"{SECTION}.{key}"
            raise ConfigError(f"{where}: {problem}", problems=[(where, problem)])
    if cfg.consensus == "pbft":
        from fedledger.netsim.consensus.pbft import check_faults

        try:
            check_faults(cfg.num_miners, cfg.pbft.faulty, cfg.pbft.crashed, field=f"{SECTION}.pbft")
        except ConfigError as exc:
            raise ConfigError(str(exc), problems=[(f"{SECTION}.pbft", str(exc))]) from None
