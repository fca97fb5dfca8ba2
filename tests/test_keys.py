"""Every party holds its own key: keystores made by `fedledger keys new`, never written to the
run directory; simulated keys only where they cannot be mistaken for real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from helpers import tiny_config
from typer.testing import CliRunner

from fedledger.audit import audit_run
from fedledger.cli.main import app
from fedledger.engine import run_experiment
from fedledger.errors import KeysError
from fedledger.ledger.keys import LIGHT_SCRYPT_N, PASSWORD_ENV, load_keys, new_keystore

runner = CliRunner()
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys") / "ks"
    res = runner.invoke(
        app,
        ["keys", "new", "--count", "10", "--out", str(folder), "--light"],
        env={PASSWORD_ENV: PASSWORD},
    )
    assert res.exit_code == 0, res.output
    return folder


def test_keys_new_writes_standard_encrypted_keystores(keystore: Path) -> None:
    names = sorted(p.name for p in keystore.iterdir())
    assert names[:2] == ["admin.json", "aggregator.json"] and len(names) == 12
    data = json.loads((keystore / "client-00003.json").read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert (keystore / "admin.json").stat().st_mode & 0o777 == 0o600
    key = Account.decrypt(data, PASSWORD)  # any Ethereum tool opens it
    assert Account.from_key(key).address.lower() == "0x" + data["address"].lower()


def test_a_ten_client_run_with_keystores_audits_and_leaks_no_key(
    keystore: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    cfg = tiny_config(federation={"num_clients": 10}, ledger={"keys": f"keystore:{keystore}"})
    out = tmp_path / "run"
    summary = run_experiment(cfg, out=out, progress=False)
    assert summary["ledger"]["keys"] == "keystore"
    report = audit_run(out)
    assert report.ok, report.describe()
    keys = load_keys(f"keystore:{keystore}", seed=cfg.seed, num_clients=10)
    deployment = json.loads((out / "ledger/deployment.json").read_text())
    assert deployment["admin"] == keys.admin.address != deployment["aggregator"]
    assert deployment["clients"] == keys.client_addresses
    secrets = [PASSWORD.encode()]
    for acct in (keys.admin, keys.aggregator, *keys.clients):
        k = bytes(acct.key)
        secrets += [k.hex().encode(), k.hex().upper().encode(), k]
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [s for s in secrets if s in data]
            assert not leaked, f"{path} holds key material"


def test_wrong_password_missing_folder_and_remote_simulated_keys_are_clear_errors(
    keystore: Path, tmp_path: Path
) -> None:
    base = ["run", str(Path(__file__).parents[1] / "examples/quickstart.toml"), "--quiet"]
    cases = [
        (
            [f'ledger.keys="keystore:{keystore}"'],
            {PASSWORD_ENV: "wrong"},
            "wrong keystore password",
        ),
        (
            [f'ledger.keys="keystore:{tmp_path / "nope"}"'],
            {PASSWORD_ENV: PASSWORD},
            "does not exist",
        ),
        (['ledger.url="http://10.20.30.40:8545"'], {}, "allowed only on the embedded chain"),
        ([f'ledger.keys="keystore:{keystore}"'], {PASSWORD_ENV: ""}, "needs a password"),
    ]
    for sets, env, message in cases:
        out = tmp_path / f"r{len(message)}"
        args = [*base, "--out", str(out)]
        for s in sets:
            args += ["--set", s]
        res = runner.invoke(app, args, env=env)
        assert res.exit_code == 2, res.output
        assert message in res.output and "Traceback" not in res.output
        assert not out.exists()  # nothing was started, nothing half-written


def test_a_keystore_for_too_few_clients_names_what_is_missing(keystore: Path) -> None:
    with pytest.raises(KeysError, match="lacks client-00010.json"):
        load_keys(f"keystore:{keystore}", seed=0, num_clients=11)


def test_keys_new_refuses_to_overwrite_or_an_empty_password(keystore: Path, tmp_path: Path) -> None:
    with pytest.raises(KeysError, match="exists already"):
        new_keystore(keystore, count=1, password="x", scrypt_n=LIGHT_SCRYPT_N)
    with pytest.raises(KeysError, match="empty keystore password"):
        new_keystore(tmp_path / "k", count=1, password="", scrypt_n=LIGHT_SCRYPT_N)
