"""fedledger from Python: run the quickstart for a few rounds, watch the rounds arrive, use the
trained model, audit the run. Documented in docs/api.md.

    .venv/bin/python examples/api_example.py [--rounds 5] [--out runs/api_example]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import fedledger
from fedledger.api import RoundResult

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("runs/api_example"))
    args = ap.parse_args()

    # the quickstart's config with one value changed, as `--set` would change it
    cfg = fedledger.load_config(HERE / "quickstart.toml", [f"federation.rounds={args.rounds}"])

    def show(r: RoundResult) -> None:  # called as each round is recorded on the ledger
        print(f"round {r.round}: accuracy {r.accuracy:.4f}, {r.num_used} updates used")

    result = fedledger.run(cfg, out=args.out, overwrite=True, on_round=show)
    print(f"final accuracy {result.final_accuracy:.4f}, model {result.global_model_hash[:16]}")

    # the trained model is an ordinary torch module
    with torch.no_grad():
        logits = result.model(torch.zeros(1, 64))
    print(f"prediction for an all-zero digit: class {int(logits.argmax())}")

    report = result.audit()  # what `fedledger audit` checks
    print(f"audit: {'OK' if report.ok else report.describe()}")


if __name__ == "__main__":
    main()
