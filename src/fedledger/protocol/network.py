"""Real rounds on a simulated network: who is selected (policy, deadline), who delivers in
time, and how long the round would take (fedledger.netsim). The chain stays the record of
what happened; the network model says how long it would have taken."""

from __future__ import annotations

from typing import Any

import numpy as np

from fedledger.config import ExperimentConfig
from fedledger.federation import Federation
from fedledger.models import count_flops
from fedledger.netsim import NetworkModel
from fedledger.netsim.rounds import COLUMNS as NET_COLUMNS
from fedledger.protocol.selection import eligible_clients, select_clients

NETWORK_COLUMNS = [*NET_COLUMNS, "net_round_s", "net_delivered", "simulated_time_s"]


class NetworkAnnotator:
    def __init__(self, cfg: ExperimentConfig, fed: Federation) -> None:
        assert cfg.network is not None
        f = cfg.federation
        self.net = NetworkModel.from_config(cfg.network, seed=cfg.seed, num_devices=f.num_clients)
        self.update_bytes = 4 * fed.dim  # one float32 vector
        self.flops = float(count_flops(fed.model, fed.data.input_shape))
        self.samples = np.array([len(p) for p in fed.parts], dtype=np.float64)
        self.epochs = f.local_epochs
        self.elapsed = 0.0
        # an impossible deadline (no device could train and upload in time) fails here,
        # before any transaction is sent
        self.net.expected_times(
            update_bytes=self.update_bytes,
            flops_per_sample=self.flops,
            samples=self.samples,
            epochs=self.epochs,
        )

    def select(self, rnd: int, k: int, eligible: list[int] | None) -> list[int]:
        """The configured policy's choice among online, eligible devices."""
        cands = self.net.candidates(
            rnd,
            update_bytes=self.update_bytes,
            flops_per_sample=self.flops,
            samples=self.samples,
            epochs=self.epochs,
        )
        if eligible is not None:
            mask = np.zeros(self.net.num_devices, dtype=bool)
            mask[eligible] = True
            cands = type(cands)(
                expected_s=cands.expected_s,
                rate_bps=cands.rate_bps,
                available=cands.available & mask,
                reputation=cands.reputation,
            )
        k = min(k, int(cands.available.sum()))
        if k == 0:
            return []
        return sorted(int(i) for i in self.net.select(cands, k, round=rnd))

    def time_round(self, rnd: int, selected: list[int]) -> tuple[list[int], dict[str, Any]]:
        """(clients whose update arrives in time, the round's net_* columns)."""
        if not selected:
            return [], {c: 0.0 for c in NETWORK_COLUMNS} | {"simulated_time_s": self.elapsed}
        timing = self.net.simulate_round(
            rnd, selected, self.update_bytes, self.flops, self.samples[selected], self.epochs
        )
        self.elapsed += timing["net_round_s"]
        row = {c: timing[c] for c in NETWORK_COLUMNS if c in timing}
        row["simulated_time_s"] = self.elapsed
        delivered = [c for c, ok in zip(selected, timing.delivered, strict=True) if ok]
        return delivered, row


def choose_clients(
    cfg: ExperimentConfig,
    rnd: int,
    flag_counts: list[int],
    network: NetworkAnnotator | None,
    *,
    seed: int,
) -> list[int]:
    """The round's selection: the network policy when a [network] is configured, otherwise the
    uniform sampler on the round's selection ``seed``; repeat offenders are never eligible.
    The auditor calls this too."""
    eligible = eligible_clients(flag_counts, cfg.reputation.max_flags)
    f = cfg.federation
    if network is not None:
        return network.select(rnd, f.per_round, eligible)
    return select_clients(
        seed=seed, round=rnd, num_clients=f.num_clients, k=f.per_round, eligible=eligible
    )
