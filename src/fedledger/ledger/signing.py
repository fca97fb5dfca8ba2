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
    return typed_digest(domain, struct_hash)


def typed_digest(domain: bytes, struct_hash: bytes) -> bytes:
    """EIP-712: keccak256(0x1901 || domainSeparator || hashStruct)."""
    return keccak(b"\x19\x01" + domain + struct_hash)


def sign_digest(digest: bytes, *, account: LocalAccount) -> tuple[bytes, bytes]:
    """EIP-2098 compact signature (r, vs) of a 32-byte digest. libsecp256k1 (coincurve) signs
    with low s, as the contract's ECDSA library requires."""
    sig = _private_key(bytes(account.key)).sign_recoverable(digest, hasher=None)
    vs = int.from_bytes(sig[32:64], "big") | (sig[64] << 255)
    return sig[:32], vs.to_bytes(32, "big")


def recover_digest(digest: bytes, *, r: bytes, vs: bytes) -> str:
    """Checksum address whose EIP-2098 signature (r, vs) of ``digest`` this is."""
    vs_int = int.from_bytes(vs, "big")
    s = vs_int & ((1 << 255) - 1)
    v = (vs_int >> 255) + 27
    return to_checksum_address(Account._recover_hash(digest, vrs=(v, int.from_bytes(r, "big"), s)))


def sign_commitment(c: Commitment, *, account: LocalAccount, domain: bytes) -> SignedCommitment:
    r, vs = sign_digest(commitment_digest(c, domain=domain), account=account)
    return SignedCommitment(commitment=c, client=account.address, r=r, vs=vs)


@lru_cache(maxsize=4096)
def _private_key(secret: bytes) -> PrivateKey:
    return PrivateKey(secret)


def recover_signer(c: Commitment, *, r: bytes, vs: bytes, domain: bytes) -> str:
    """Address that signed ``c`` (EIP-2098 compact signature)."""
    return recover_digest(commitment_digest(c, domain=domain), r=r, vs=vs)


@dataclass(frozen=True)
class SignedVote:
    """A committee member's verdict on each of a round's commitments (1 accept, 0 reject)."""

    round: int
    member: str
    accept: bytes
    r: bytes
    vs: bytes


def vote_digest(*, round: int, accept: bytes, domain: bytes) -> bytes:
    return typed_digest(domain, keccak(VOTE_TYPEHASH + round.to_bytes(32, "big") + keccak(accept)))


def sign_vote(*, round: int, accept: bytes, account: LocalAccount, domain: bytes) -> SignedVote:
    r, vs = sign_digest(vote_digest(round=round, accept=accept, domain=domain), account=account)
    return SignedVote(round=round, member=account.address, accept=accept, r=r, vs=vs)
