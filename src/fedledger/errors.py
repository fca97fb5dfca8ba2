"""One root exception with subclasses; messages say what was expected and what to do next."""

from __future__ import annotations

from collections.abc import Iterable


class FedLedgerError(Exception):
    """Root of every error fedledger raises on purpose."""


class ConfigError(FedLedgerError, ValueError):
    """A configuration value is unknown, of the wrong type, or out of range.

    ``problems``, where known: one ``(key, what is wrong)`` pair per bad key
    (``("attack.fraction", "Input should be ...")``), so that an enclosing configuration can
    name each key, and the ``--set`` item that gave it, on a line of its own.
    """

    def __init__(self, message: str, *, problems: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class DataError(FedLedgerError):
    """A data set is missing or malformed."""


class ModelError(FedLedgerError):
    """A model name is unknown or does not fit the data."""


class UpdateRejected(FedLedgerError):
    """A client update failed validation (shape, dtype, NaN/Inf, hash). Carries a reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class LedgerError(FedLedgerError):
    """The chain or a contract call failed."""


class KeysError(FedLedgerError):
    """A party's key cannot be loaded or is not allowed here (keystore, password, provider)."""


class ProtocolError(FedLedgerError):
    """A party observed a protocol violation it must not continue past (e.g. a global model
    that does not match the on-chain hash)."""


class StoreError(FedLedgerError):
    """A blob is missing from the store or does not match its content hash."""


class AuditError(FedLedgerError):
    """An audit found an inconsistency; the message names the round and the client."""


class RegistryError(FedLedgerError, KeyError):
    """A name is unknown to, or already present in, a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
