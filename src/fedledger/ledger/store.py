"""Content-addressed blob store: safetensors files named by their SHA-256. Nothing is pickled."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from fedledger.errors import StoreError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_tensors(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """Serialise tensors to safetensors bytes (deterministic for equal inputs)."""
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return st_save(contiguous, metadata=metadata)


def decode_tensors(data: bytes) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes; anything else is a StoreError (never unpickled)."""
    try:
        return dict(st_load(data))
    except Exception as exc:  # safetensors raises its own error types
        raise StoreError(f"blob is not a valid safetensors file: {exc}") from exc


class BlobStore:
    """A directory of blobs ``<root>/<aa>/<sha256>.safetensors``; a blob's name is its hash."""

    SUFFIX = ".safetensors"

    def __init__(self, root: str | Path, *, write_behind: bool = False) -> None:
        """``write_behind``: files are written by a background thread (file I/O releases the
        GIL, so training goes on meanwhile); until written, reads are served from memory."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._dirs: set[str] = set()
        self._pending: dict[str, bytes] = {}
        self._writer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="blobstore")
            if write_behind
            else None
        )
        self._futures: list[Future[None]] = []

    def path(self, digest: str) -> Path:
        digest = _norm(digest)
        return self.root / digest[:2] / f"{digest}{self.SUFFIX}"

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_hex(data)
        if self._writer is None:
            self._write(digest, data)
        elif digest not in self._pending:
            self._pending[digest] = data
            self._futures.append(self._writer.submit(self._write, digest, data))
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        p = self.path(digest)
        if p.parent.name not in self._dirs:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(p.parent.name)
        try:
            with p.open("xb") as fh:  # exclusive create: an existing blob is never rewritten
                fh.write(data)
        except FileExistsError:
            pass
        self._pending.pop(digest, None)

    def flush(self) -> None:
        """Wait until every blob is on disk (re-raising a failed write)."""
        futures, self._futures = self._futures, []
        for f in futures:
            f.result()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def put_tensors(
        self, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
    ) -> str:
        return self.put_bytes(encode_tensors(tensors, metadata))

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and (
            _norm(digest) in self._pending or self.path(digest).exists()
        )

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes, after checking that they still hash to ``digest``."""
        d = _norm(digest)
        data = self._pending.get(d)
        if data is not None:  # hashed by this store a moment ago, still in memory
            return data
        p = self.path(d)
        if not p.exists():
            raise StoreError(f"blob {d} is missing from {self.root}")
        data = p.read_bytes()
        actual = sha256_hex(data)
        if actual != d:
            raise StoreError(f"blob {d} was altered: its content now hashes to {actual}")
        return data

    def get_tensors(self, digest: str) -> dict[str, torch.Tensor]:
        return decode_tensors(self.get_bytes(digest))


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _norm(digest: str) -> str:
    d = digest.lower().removeprefix("0x")
    if not _HEX64.fullmatch(d):
        raise StoreError(f"expected a 64-digit hex SHA-256, got {digest!r}")
    return d
