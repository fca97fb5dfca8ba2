from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import StoreError
from fedledger.ledger.store import BlobStore, decode_tensors, sha256_hex


def test_roundtrip_and_content_addressing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    t = torch.arange(10, dtype=torch.float32)
    h = store.put_tensors({"delta": t})
    assert store.path(h).name == f"{h}.safetensors"
    assert sha256_hex(store.path(h).read_bytes()) == h
    assert torch.equal(store.get_tensors(h)["delta"], t)
    assert store.put_tensors({"delta": t.clone()}) == h  # same content, same name


def test_altered_blob_is_detected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    h = store.put_tensors({"delta": torch.ones(4)})
    p = store.path(h)
    b = bytearray(p.read_bytes())
    b[-1] ^= 0x01
    p.write_bytes(bytes(b))
    with pytest.raises(StoreError, match="altered"):
        store.get_bytes(h)


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
