import hashlib

from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import (
    Commitment,
    commitment_digest,
    domain_separator,
    recover_signer,
    sign_commitment,
)

CONTRACT = "0x6172fF1D4213F662178d266b7B13B952Fd910fF8"


def _typed(c: Commitment, chain_id: int) -> dict:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Commitment": [
                {"name": "round", "type": "uint256"},
                {"name": "baseModelHash", "type": "bytes32"},
                {"name": "updateHash", "type": "bytes32"},
                {"name": "numSamples", "type": "uint64"},
            ],
        },
        "primaryType": "Commitment",
        "domain": {
            "name": "FedLedger",
            "version": "2",
            "chainId": chain_id,
            "verifyingContract": CONTRACT,
        },
        "message": {
            "round": c.round,
            "baseModelHash": c.base_model_hash,
            "updateHash": c.update_hash,
            "numSamples": c.num_samples,
        },
    }


@settings(max_examples=25, deadline=None)
@given(
    rnd=st.integers(0, 2**32),
    n=st.integers(1, 2**63),
    seed=st.integers(0, 2**16),
    chain_id=st.sampled_from([1, 31337]),
)
def test_digest_matches_eth_account_eip712_and_recovers(
    rnd: int, n: int, seed: int, chain_id: int
) -> None:
    c = Commitment(
        round=rnd,
        base_model_hash=hashlib.sha256(str(rnd).encode()).digest(),
        update_hash=hashlib.sha256(str(seed).encode()).digest(),
        num_samples=n,
    )
    domain = domain_separator(chain_id=chain_id, contract=CONTRACT)
    acct = derive_account(seed=seed, role="client", index=1)
    signed = sign_commitment(c, account=acct, domain=domain)
    # the library's EIP-712 implementation signs the same digest
    ref = Account.sign_message(encode_typed_data(full_message=_typed(c, chain_id)), acct.key)
    assert ref.message_hash == commitment_digest(c, domain=domain)
    assert recover_signer(c, r=signed.r, vs=signed.vs, domain=domain) == acct.address


def test_altered_commitment_recovers_to_someone_else() -> None:
    domain = domain_separator(chain_id=1, contract=CONTRACT)
    acct = derive_account(seed=1, role="client", index=0)
    base = b"\x07" * 32
    c = Commitment(round=3, base_model_hash=base, update_hash=b"\x01" * 32, num_samples=10)
    s = sign_commitment(c, account=acct, domain=domain)
    for altered in (
        Commitment(round=3, base_model_hash=base, update_hash=b"\x01" * 32, num_samples=11),
        Commitment(round=4, base_model_hash=base, update_hash=b"\x01" * 32, num_samples=10),
        Commitment(round=3, base_model_hash=base, update_hash=b"\x02" * 32, num_samples=10),
        Commitment(round=3, base_model_hash=b"\x08" * 32, update_hash=b"\x01" * 32, num_samples=10),
    ):
        assert recover_signer(altered, r=s.r, vs=s.vs, domain=domain) != acct.address
    other = domain_separator(chain_id=1, contract="0x" + "22" * 20)  # another run's contract
    assert recover_signer(c, r=s.r, vs=s.vs, domain=other) != acct.address
    assert recover_signer(c, r=bytes(32), vs=bytes(32), domain=domain) is None  # zero signature


def test_keys_are_deterministic_and_distinct() -> None:
    a = derive_account(seed=5, role="client", index=0)
    assert a.address == derive_account(seed=5, role="client", index=0).address
    assert a.address != derive_account(seed=5, role="client", index=1).address
    assert a.address != derive_account(seed=6, role="client", index=0).address


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_keccak_is_keccak_256_with_either_backend(data: bytes) -> None:
    """The fast path (pysha3) and the fallback (pycryptodome) give Ethereum's Keccak-256, not
    SHA3-256 (they differ in padding); the empty string's digest is the well-known one."""
    from Crypto.Hash import keccak as reference

    import fedledger.ledger.signing as signing

    want = reference.new(digest_bits=256, data=data).digest()
    assert signing.keccak(data) == want
    fast = signing._keccak_256
    try:
        signing._keccak_256 = None
        assert signing.keccak(data) == want
    finally:
        signing._keccak_256 = fast
    assert want != hashlib.sha3_256(data).digest()
    assert signing.keccak(b"").hex().startswith("c5d2460186f7233c927e7db2dcc703c0")
