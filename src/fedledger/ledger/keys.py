"""Who holds which key: the admin (requester), the aggregator and every client, each its own.

``ledger.keys`` selects a provider:

* ``"simulated"`` (default): keys derived from the run seed, ``keccak256("fedledger:{seed}:
  {role}:{index}")``. **Insecure by design**: anyone who knows the seed (it is in config.toml)
  can sign as anyone. Allowed only on the embedded chain or a node on 127.0.0.1/localhost.
* ``"keystore:DIR"``: one standard encrypted Ethereum keystore (V3 JSON, scrypt) per party,
  ``DIR/admin.json``, ``DIR/aggregator.json``, ``DIR/client-00000.json``, ..., made by
  ``fedledger keys new --count N --out DIR``. The password comes from the environment
  variable ``FEDLEDGER_KEYSTORE_PASSWORD`` or from the file ``ledger.password_file`` names;
  neither the password nor any key is ever written to config.toml or the run directory.

In the single-machine simulation every party's key is in the memory of one machine; the code
keeps them apart (the aggregator's code is handed only the aggregator's account), which is all a
simulation can do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from fedledger.errors import KeysError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PASSWORD_ENV = "FEDLEDGER_KEYSTORE_PASSWORD"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
STANDARD_SCRYPT_N = 2**18  # what geth and eth-account write by default
LIGHT_SCRYPT_N = 2**12  # geth's --lightkdf: for throw-away test keys only


def derive_account(*, seed: int, role: str, index: int = 0) -> LocalAccount:
    """keccak256("fedledger:{seed}:{role}:{index}") reduced into [1, n-1]. Simulation only."""
    k = int.from_bytes(keccak(text=f"fedledger:{seed}:{role}:{index}"), "big") % (SECP256K1_N - 1)
    return Account.from_key((k + 1).to_bytes(32, "big"))


@dataclass(frozen=True)
class PartyKeys:
    """The run's accounts. ``kind`` is "simulated" or "keystore" (recorded, never the keys)."""

    kind: str
    admin: LocalAccount
    aggregator: LocalAccount
    clients: tuple[LocalAccount, ...]

    @property
    def client_addresses(self) -> list[str]:
        return [c.address for c in self.clients]


def is_local_url(url: str) -> bool:
    """True for the embedded chain (empty URL) or a node on the loopback interface."""
    if not url:
        return True
    host = urlparse(url).hostname or ""
    return host in LOCAL_HOSTS


def load_keys(
    spec: str,
    *,
    seed: int,
    num_clients: int,
    url: str = "",
    password_file: str | None = None,
) -> PartyKeys:
    """The parties' accounts for ``ledger.keys = spec``; a clear KeysError on any problem."""
    if spec == "simulated":
        if not is_local_url(url):
            raise KeysError(
                f"ledger.keys = 'simulated' derives every key from the seed in config.toml, so it "
                f"is allowed only on the embedded chain or a node on 127.0.0.1, not {url!r}; "
                "make real keys with `fedledger keys new --count N --out DIR` and set "
                "ledger.keys = 'keystore:DIR'"
            )
        return PartyKeys(
            kind="simulated",
            admin=derive_account(seed=seed, role="deployer"),
            aggregator=derive_account(seed=seed, role="aggregator"),
            clients=tuple(
                derive_account(seed=seed, role="client", index=i) for i in range(num_clients)
            ),
        )
    if spec.startswith("keystore:"):
        return load_keystore(
            Path(spec.removeprefix("keystore:")),
            num_clients=num_clients,
            password=lambda: read_password(password_file),
        )
    raise KeysError(f"ledger.keys must be 'simulated' or 'keystore:DIR', got {spec!r}")


def read_password(password_file: str | None) -> str:
    """The keystore password: ``$FEDLEDGER_KEYSTORE_PASSWORD``, else the password file."""
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if password_file:
        p = Path(password_file).expanduser()
        try:
            return p.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise KeysError(f"cannot read the keystore password file {p}: {exc.strerror}") from None
    raise KeysError(
        f"the keystore needs a password: set {PASSWORD_ENV} or ledger.password_file "
        "(a file holding only the password)"
    )


def keystore_names(num_clients: int) -> list[str]:
    return ["admin.json", "aggregator.json", *(client_file(i) for i in range(num_clients))]


def client_file(index: int) -> str:
    return f"client-{index:05d}.json"


def load_keystore(
    folder: Path, *, num_clients: int, password: str | Callable[[], str]
) -> PartyKeys:
    """The parties' accounts from a keystore folder (``password``: or a function giving it,
    asked only once the files are known to be there)."""
    if not folder.is_dir():
        raise KeysError(
            f"keystore folder {folder} does not exist; make one with "
            f"`fedledger keys new --count {num_clients} --out {folder}`"
        )
    names = keystore_names(num_clients)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise KeysError(
            f"keystore folder {folder} lacks {shown} (the run needs admin.json, "
            f"aggregator.json and {num_clients} client files)"
        )
    secret = password() if callable(password) else password

    def decrypt(name: str) -> LocalAccount:
        path = folder / name
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            key = Account.decrypt(data, secret)
        except json.JSONDecodeError as exc:
            raise KeysError(f"{path} is not a keystore JSON file ({exc})") from None
        except ValueError as exc:  # eth-keyfile: "MAC mismatch" for a wrong password
            if "MAC mismatch" in str(exc):
                raise KeysError(
                    f"wrong keystore password for {path} (from ${PASSWORD_ENV} or "
                    "ledger.password_file)"
                ) from None
            raise KeysError(f"{path} is not a valid keystore: {exc}") from None
        except (KeyError, TypeError) as exc:
            raise KeysError(f"{path} is not a valid keystore: missing {exc}") from None
        acct: LocalAccount = Account.from_key(key)
        recorded = data.get("address")
        if (
            recorded
            and to_checksum_address("0x" + str(recorded).removeprefix("0x")) != acct.address
        ):
            raise KeysError(f"{path}: the key does not match the address the file records")
        return acct

    # scrypt runs in C with the GIL released: decrypt on every core
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        accounts = list(pool.map(decrypt, names))
    if len({a.address for a in accounts}) != len(accounts):
        raise KeysError(f"keystore folder {folder} holds the same key for two parties")
    return PartyKeys(
        kind="keystore", admin=accounts[0], aggregator=accounts[1], clients=tuple(accounts[2:])
    )


def new_keystore(
    folder: Path, *, count: int, password: str, scrypt_n: int = STANDARD_SCRYPT_N
) -> list[Path]:
    """Create fresh random keys for an admin, an aggregator and ``count`` clients, each in its
    own encrypted keystore file (mode 0600). Refuses to overwrite an existing file."""
    if count < 1:
        raise KeysError(f"--count must be at least 1, got {count}")
    if not password:
        raise KeysError(f"an empty keystore password is not allowed; set {PASSWORD_ENV}")
    folder.mkdir(parents=True, exist_ok=True)
    names = keystore_names(count)
    clash = [n for n in names if (folder / n).exists()]
    if clash:
        raise KeysError(f"{folder / clash[0]} exists already; choose an empty folder")

    def create(name: str) -> Path:
        acct = Account.create()
        blob = Account.encrypt(acct.key, password, iterations=scrypt_n)
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(blob, fh)
        return path

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(create, names))
