"""``file_digest`` streams through a reused buffer: the digest is still exactly that of
the whole file's bytes, at every size around the buffer's (keys depend on it)."""

from __future__ import annotations

import os

import pytest
import xxhash

from fdbuild.keys import HASH_PREFIX, file_digest

MiB = 1 << 20


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5])
def test_the_digest_is_the_whole_files(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_digest(path) == HASH_PREFIX + xxhash.xxh3_128_hexdigest(data)
    assert file_digest(path, chunk_size=7) == file_digest(path)


def test_a_known_file_keeps_its_digest(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"task_id": "t000", "question": "What is 0 plus 0?"}\n' * 50_000)
    assert file_digest(path) == "x3:" + xxhash.xxh3_128_hexdigest(path.read_bytes())
    assert file_digest(path) == "x3:f35b2f20516a4a0a75ecdf6f0db758e1"
