from pathlib import Path

import pytest
import torch
from helpers import flip_blob_byte
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import StoreError
from fedledger.ledger.store import BlobStore, decode_tensors, sha256_hex


def test_roundtrip_and_content_addressing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    t = torch.arange(10, dtype=torch.float32)
    h = store.put_tensors({"delta": t})
    assert h in store and sha256_hex(store.get_bytes(h)) == h
    assert torch.equal(store.get_tensors(h)["delta"], t)
    assert store.put_tensors({"delta": t.clone()}) == h  # same content, same name


def test_altered_blob_is_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    h = store.put_tensors({"delta": torch.ones(4)})
    flip_blob_byte(tmp_path, h, index=-1)
    with pytest.raises(StoreError, match="altered"):
        store.get_bytes(h)


def test_a_batch_is_one_transaction(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    kept = store.put_bytes(b"recorded before")
    with pytest.raises(RuntimeError), store.batch():
        lost = store.put_bytes(b"inside a failed batch")
        raise RuntimeError("the round failed")
    with store.batch():
        a, b = store.put_bytes(b"a"), store.put_bytes(b"b")
    store.close()
    reader = BlobStore(tmp_path, readonly=True)
    assert kept in reader and a in reader and b in reader
    assert lost not in reader  # rolled back; nothing recorded before it was lost


def test_readonly_store_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no blob store"):
        BlobStore(tmp_path / "nowhere", readonly=True)


def test_missing_blob_and_bad_digest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(StoreError, match="missing"):
        store.get_bytes("ab" * 32)
    with pytest.raises(StoreError, match="64-digit hex"):
        store.get_bytes("../../etc/passwd")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_decode_to_anything_but_an_error_or_tensors(data: bytes) -> None:
    try:
        out = decode_tensors(data)
    except StoreError:
        return
    assert all(isinstance(v, torch.Tensor) for v in out.values())


def test_pickle_is_refused() -> None:
    import pickle

    with pytest.raises(StoreError):
        decode_tensors(pickle.dumps({"delta": [1.0, 2.0]}))
