"""Speed of the network model: 10,000 heterogeneous devices x 100 rounds (issue 4: <= 60 s).

    .venv/bin/python benchmarks/netsim_speed.py [--devices 10000] [--rounds 100]

Every round all devices participate: tiers (phone / vehicle / edge server), Rayleigh fading,
frame errors with retransmissions, availability and dropout, a deadline, PoW with forks; the
round's 10,000 updates fill 100 blocks.  Prints the wall time and ends with ``seconds=X``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fedledger.netsim import NetworkModel

SECTION = {
    "tiers": [
        {"name": "phone", "share": 0.7, "flops": 1e9, "distance_m": [20, 300], "availability": 0.9,
         "dropout": 0.05},
        {"name": "vehicle", "share": 0.25, "flops": 1e10, "distance_m": [20, 300]},
        {"name": "edge_server", "share": 0.05, "flops": 1e12, "distance_m": [5, 20]},
    ],
    "uplink": {"fading": "rayleigh", "frame_error_rate": 0.05},
    "downlink": {"bandwidth_hz": 1e7, "tx_power_dbm": 40.0, "fading": "rayleigh"},
    "deadline_s": 30.0,
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    t0 = time.perf_counter()
    net = NetworkModel.from_config(SECTION, seed=0, num_devices=args.devices)
    everyone = np.arange(args.devices)
    samples = np.full(args.devices, 200)
    simulated = 0.0
    delivered = 0.0
    for r in range(args.rounds):
        t = net.simulate_round(r, everyone, 20_000, 1e5, samples, 1)
        simulated += t["net_round_s"]
        delivered += t["net_delivered"]
    wall = time.perf_counter() - t0
    print(
        f"netsim_speed: {args.devices} devices x {args.rounds} rounds in {wall:.2f} s "
        f"(limit 60 s); simulated time {simulated:,.0f} s; "
        f"{delivered / args.rounds:,.0f} updates delivered per round"
    )
    print(f"seconds={wall:.2f}")


if __name__ == "__main__":
    main()
