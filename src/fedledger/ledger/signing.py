"""EIP-712 commitments: what a client signs for its update, computed the way the contract does.

Domain ``FedLedger``/``1``/chainId/contract; type
``Commitment(uint256 round,bytes32 updateHash,uint64 numSamples)``. Signatures are returned in
EIP-2098 compact form (r, vs) as the contract takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from coincurve import PrivateKey
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
COMMITMENT_TYPEHASH = keccak(text="Commitment(uint256 round,bytes32 updateHash,uint64 numSamples)")
VOTE_TYPEHASH = keccak(text="Vote(uint256 round,bytes accept)")


@dataclass(frozen=True)
class Commitment:
    round: int
    update_hash: bytes  # 32 bytes (SHA-256 of the update blob)
    num_samples: int


@dataclass(frozen=True)
class SignedCommitment:
    commitment: Commitment
    client: str  # checksum address of the signer
    r: bytes
    vs: bytes


def domain_separator(*, chain_id: int, contract: str) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text="FedLedger"), keccak(text="1"), chain_id, contract],
        )
    )


def commitment_digest(c: Commitment, *, domain: bytes) -> bytes:
    """keccak256(0x1901 || domain || hashStruct(c)); the struct's fields are static ABI words."""
    if len(c.update_hash) != 32:
        raise ValueError(f"update_hash must be 32 bytes, got {len(c.update_hash)}")
    struct_hash = keccak(
        COMMITMENT_TYPEHASH
        + c.round.to_bytes(32, "big")
        + c.update_hash
        + c.num_samples.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + domain + struct_hash)


def sign_commitment(c: Commitment, *, account: LocalAccount, domain: bytes) -> SignedCommitment:
    # libsecp256k1 (coincurve) signs with low s, as the contract's ECDSA library requires
    sig = _private_key(bytes(account.key)).sign_recoverable(
        commitment_digest(c, domain=domain), hasher=None
    )
    r, s, recid = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    vs = s | (recid << 255)
    return SignedCommitment(commitment=c, client=account.address, r=r, vs=vs.to_bytes(32, "big"))


@lru_cache(maxsize=4096)
def _private_key(secret: bytes) -> PrivateKey:
    return PrivateKey(secret)


def recover_signer(c: Commitment, *, r: bytes, vs: bytes, domain: bytes) -> str:
    """Address that signed ``c`` (EIP-2098 compact signature)."""
    vs_int = int.from_bytes(vs, "big")
    s = vs_int & ((1 << 255) - 1)
    v = (vs_int >> 255) + 27
    addr = Account._recover_hash(
        commitment_digest(c, domain=domain), vrs=(v, int.from_bytes(r, "big"), s)
    )
    return to_checksum_address(addr)


@dataclass(frozen=True)
class SignedVote:
    """A committee member's verdict on each of a round's commitments (1 accept, 0 reject)."""

    round: int
    member: str
    accept: bytes
    r: bytes
    vs: bytes


def vote_digest(*, round: int, accept: bytes, domain: bytes) -> bytes:
    struct_hash = keccak(VOTE_TYPEHASH + round.to_bytes(32, "big") + keccak(accept))
    return keccak(b"\x19\x01" + domain + struct_hash)


def sign_vote(*, round: int, accept: bytes, account: LocalAccount, domain: bytes) -> SignedVote:
    sig = _private_key(bytes(account.key)).sign_recoverable(
        vote_digest(round=round, accept=accept, domain=domain), hasher=None
    )
    vs = int.from_bytes(sig[32:64], "big") | (sig[64] << 255)
    return SignedVote(
        round=round, member=account.address, accept=accept, r=sig[:32], vs=vs.to_bytes(32, "big")
    )


def recover_vote_signer(v: SignedVote, *, domain: bytes) -> str:
    vs_int = int.from_bytes(v.vs, "big")
    s = vs_int & ((1 << 255) - 1)
    rec_v = (vs_int >> 255) + 27
    digest = vote_digest(round=v.round, accept=v.accept, domain=domain)
    addr = Account._recover_hash(digest, vrs=(rec_v, int.from_bytes(v.r, "big"), s))
    return to_checksum_address(addr)
