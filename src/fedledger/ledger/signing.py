"""EIP-712 messages of the protocol, computed the way the contract computes them.

Domain ``FedLedger``/``2``/chainId/contract: every signature binds one deployment on one chain
(the contract's address is unique per run, see :mod:`fedledger.ledger.chain`). Types:

* ``Commitment(uint256 round,bytes32 baseModelHash,bytes32 updateHash,uint64 numSamples)``:
  a client's commitment to its update, bound to the round and the global model it trained from;
* ``Vote(uint256 round,bytes32 commitmentsDigest,bytes accept)``: a committee member's verdict
  on every commitment of a round, bound to the round's final commitments digest.

Signatures are EIP-2098 compact (r, vs), low-s (libsecp256k1 via coincurve), as the contract's
ECDSA library takes them. No web3 here: this module is what a client device needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak as _keccak_mod
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

try:  # safe-pysha3: ~0.7 us per short message here, pycryptodome ~3.3 us
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - a platform without the wheel
    _keccak_256 = None


def keccak(data: bytes = b"", *, text: str | None = None) -> bytes:
    """Keccak-256, called directly (the hot path signs and checks every update)."""
    if text is not None:
        data = text.encode()
    if _keccak_256 is not None:
        return _keccak_256(data).digest()
    return _keccak_mod.new(digest_bits=256, data=data).digest()


DOMAIN_NAME = "FedLedger"
DOMAIN_VERSION = "2"
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
COMMITMENT_TYPEHASH = keccak(
    text="Commitment(uint256 round,bytes32 baseModelHash,bytes32 updateHash,uint64 numSamples)"
)
VOTE_TYPEHASH = keccak(text="Vote(uint256 round,bytes32 commitmentsDigest,bytes accept)")
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass(frozen=True)
class Commitment:
    round: int
    base_model_hash: bytes  # 32 bytes: SHA-256 of the global-model blob the client trained from
    update_hash: bytes  # 32 bytes: SHA-256 of the update blob
    num_samples: int


@dataclass(frozen=True)
class SignedCommitment:
    commitment: Commitment
    client: str  # checksum address of the signer
    r: bytes
    vs: bytes


@dataclass(frozen=True)
class SignedVote:
    """A committee member's verdict on each of a round's commitments (1 accept, 0 reject)."""

    round: int
    commitments_digest: bytes
    member: str
    accept: bytes
    r: bytes
    vs: bytes


def domain_separator(*, chain_id: int, contract: str) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPEHASH,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                contract,
            ],
        )
    )


def typed_digest(domain: bytes, struct_hash: bytes) -> bytes:
    """EIP-712: keccak256(0x1901 || domainSeparator || hashStruct)."""
    return keccak(b"\x19\x01" + domain + struct_hash)


def commitment_digest(c: Commitment, *, domain: bytes) -> bytes:
    """The digest a client signs; the struct's fields are static ABI words."""
    if len(c.update_hash) != 32 or len(c.base_model_hash) != 32:
        raise ValueError("update_hash and base_model_hash must be 32 bytes each")
    if not 0 <= c.num_samples < 2**64:
        raise ValueError(f"num_samples must fit a uint64, got {c.num_samples}")
    struct_hash = keccak(
        COMMITMENT_TYPEHASH
        + c.round.to_bytes(32, "big")
        + c.base_model_hash
        + c.update_hash
        + c.num_samples.to_bytes(32, "big")
    )
    return typed_digest(domain, struct_hash)


def vote_digest(*, round: int, commitments_digest: bytes, accept: bytes, domain: bytes) -> bytes:
    struct_hash = keccak(
        VOTE_TYPEHASH + round.to_bytes(32, "big") + commitments_digest + keccak(accept)
    )
    return typed_digest(domain, struct_hash)


@lru_cache(maxsize=16384)
def _private_key(secret: bytes) -> PrivateKey:
    return PrivateKey(secret)


def sign_digest(digest: bytes, *, account: LocalAccount) -> tuple[bytes, bytes]:
    """EIP-2098 compact signature (r, vs) of a 32-byte digest, low s."""
    sig = _private_key(bytes(account.key)).sign_recoverable(digest, hasher=None)
    vs = int.from_bytes(sig[32:64], "big") | (sig[64] << 255)
    return sig[:32], vs.to_bytes(32, "big")


def recover_digest(digest: bytes, *, r: bytes, vs: bytes) -> str | None:
    """Checksum address whose EIP-2098 signature (r, vs) of ``digest`` this is; None when the
    bytes are no valid low-s signature (the contract's ``ECDSA.tryRecover`` refuses the same)."""
    raw = recover_digest_raw(digest, r=r, vs=vs)
    return None if raw is None else to_checksum_address(raw)


def recover_digest_raw(digest: bytes, *, r: bytes, vs: bytes) -> bytes | None:
    """The 20 address bytes of :func:`recover_digest` (no checksum encoding)."""
    if len(r) != 32 or len(vs) != 32:
        return None
    vs_int = int.from_bytes(vs, "big")
    s = vs_int & ((1 << 255) - 1)
    if s == 0 or s > SECP256K1_HALF_N or not any(r):
        return None
    sig = r + s.to_bytes(32, "big") + bytes([vs_int >> 255])
    try:
        pub = PublicKey.from_signature_and_message(sig, digest, hasher=None)
    except Exception:  # coincurve raises ValueError or its own error for an invalid point
        return None
    return keccak(pub.format(compressed=False)[1:])[-20:]


def sign_commitment(c: Commitment, *, account: LocalAccount, domain: bytes) -> SignedCommitment:
    r, vs = sign_digest(commitment_digest(c, domain=domain), account=account)
    return SignedCommitment(commitment=c, client=account.address, r=r, vs=vs)


def recover_signer(c: Commitment, *, r: bytes, vs: bytes, domain: bytes) -> str | None:
    """Address that signed ``c`` (None for an invalid signature)."""
    return recover_digest(commitment_digest(c, domain=domain), r=r, vs=vs)


def sign_vote(
    *, round: int, commitments_digest: bytes, accept: bytes, account: LocalAccount, domain: bytes
) -> SignedVote:
    digest = vote_digest(
        round=round, commitments_digest=commitments_digest, accept=accept, domain=domain
    )
    r, vs = sign_digest(digest, account=account)
    return SignedVote(
        round=round,
        commitments_digest=commitments_digest,
        member=account.address,
        accept=accept,
        r=r,
        vs=vs,
    )


def recover_vote_signer(v: SignedVote, *, domain: bytes) -> str | None:
    digest = vote_digest(
        round=v.round, commitments_digest=v.commitments_digest, accept=v.accept, domain=domain
    )
    return recover_digest(digest, r=v.r, vs=v.vs)
