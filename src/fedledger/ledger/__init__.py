"""The only layer that speaks web3: chain connection, the FedLedger contract, the blob store."""

from fedledger.ledger.chain import Chain, TxLog, TxRecord
from fedledger.ledger.contract import FedLedgerContract, load_artifact
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import Commitment, SignedCommitment, recover_signer, sign_commitment
from fedledger.ledger.store import BlobStore, sha256_hex

__all__ = [
    "BlobStore",
    "Chain",
    "Commitment",
    "FedLedgerContract",
    "SignedCommitment",
    "TxLog",
    "TxRecord",
    "derive_account",
    "load_artifact",
    "recover_signer",
    "sha256_hex",
    "sign_commitment",
]
