"""The local blob store: content addressing, idempotent puts, streaming reads, deletes."""

import hashlib

import pytest

from models.blobs import BlobNotFound, LocalBlobStore


def test_put_is_content_addressed_and_idempotent(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key, digest = store.put(b"%PDF-1.4 demo")
    assert digest == hashlib.sha256(b"%PDF-1.4 demo").hexdigest()
    assert key == f"sha256:{digest}"
    assert store.put(b"%PDF-1.4 demo") == (key, digest)
    assert store.read(key) == b"%PDF-1.4 demo"
    assert not list(tmp_path.rglob(".tmp-*"))


def test_large_blob_streams_in_chunks(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    data = bytes(range(256)) * 1024
    key, _ = store.put(data)
    chunks = list(store.read_chunks(key))
    assert len(chunks) == 4
    assert b"".join(chunks) == data


def test_delete_and_missing(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    key, _ = store.put(b"x")
    assert store.delete(key) is True
    assert store.delete(key) is False
    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.read(key)


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "sha256:../../x", "md5:" + "a" * 64, "sha256:" + "G" * 64]
)
def test_rejects_keys_that_could_escape_the_root(tmp_path, key) -> None:
    with pytest.raises(ValueError, match="not a blob key"):
        LocalBlobStore(tmp_path).read(key)
