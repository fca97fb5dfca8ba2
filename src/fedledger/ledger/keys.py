"""Deterministic keys: every client, the aggregator and the deployer own a secp256k1 key derived
from the run seed, so that a run and its replay use the same accounts and addresses."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def derive_account(*, seed: int, role: str, index: int = 0) -> LocalAccount:
    """keccak256("fedledger:{seed}:{role}:{index}") reduced into [1, n-1].

    For simulations and tests only: anyone who knows the seed knows the keys. Deployments give
    each party its own key (``Account.create()``) instead.
    """
    k = int.from_bytes(keccak(text=f"fedledger:{seed}:{role}:{index}"), "big") % (SECP256K1_N - 1)
    return Account.from_key((k + 1).to_bytes(32, "big"))
