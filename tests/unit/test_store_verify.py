"""Verified reads at the store level: artifact sidecars, record checksums, quarantine."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from fdbuild.errors import ArtifactCorrupt, CacheUnreadable
from fdbuild.store.objects import ArtifactStore
from fdbuild.store.quarantine import notes
from fdbuild.store.records import MAGIC, RecordDamaged, decode, encode, intact
from fdbuild.store.rowcache import GEN, RowCache
from fdbuild.store.verify import looks_intact, sidecar_path, verify_artifact

SCHEMA = pa.schema([("_id", pa.string()), ("text", pa.string()), ("n", pa.int64())])


def write_artifact(state: Path, rows: int = 300) -> tuple[ArtifactStore, str]:
    store = ArtifactStore(state / "objects")
    writer = store.writer(SCHEMA)
    for i in range(rows):
        writer.write({"_id": f"r{i}", "text": f"row number {i} " * 5, "n": i})
    digest, count = writer.finish()
    assert count == rows
    return store, digest


def garble(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    mid = int(len(data) * at)
    data[mid : mid + 4] = bytes(b ^ 0xFF for b in data[mid : mid + 4])
    path.write_bytes(bytes(data))


def test_writer_records_the_bytes_digest_and_a_read_verifies_it(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    side = json.loads(sidecar_path(store.path(digest)).read_text())
    assert side["size"] == store.path(digest).stat().st_size
    assert side["bytes"].startswith("x3:") and side["rows"] == 300
    assert verify_artifact(store.path(digest), deep=True).ok
    rows = [r for batch in store.read_batches(digest) for r in batch]
    assert len(rows) == 300 and rows[7]["n"] == 7


def test_a_changed_byte_fails_verification_and_no_row_is_read(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    garble(store.path(digest))
    assert looks_intact(store.path(digest))  # same size: the cheap memo-hit check passes
    verdict = verify_artifact(store.path(digest))
    assert not verdict.ok and "bytes digest" in verdict.reason
    fresh = ArtifactStore(store.directory)  # no per-process verified stamp
    with pytest.raises(ArtifactCorrupt) as info:
        next(fresh.read_batches(digest))
    assert digest in info.value.message


def test_a_truncated_artifact_fails_even_the_cheap_check(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    path = store.path(digest)
    path.write_bytes(path.read_bytes()[:100])
    assert not looks_intact(path)
    assert "size" in verify_artifact(path).reason


def test_legacy_artifact_is_checked_by_rows_and_adopted(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    sidecar_path(store.path(digest)).unlink()
    verdict = verify_artifact(store.path(digest))
    assert verdict.ok and verdict.legacy
    fresh = ArtifactStore(store.directory)
    assert fresh.verify(digest).ok
    assert sidecar_path(store.path(digest)).exists()  # written once, bytes checks from now on


def test_legacy_artifact_with_changed_rows_fails(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    sidecar_path(store.path(digest)).unlink()
    other, other_digest = write_artifact(tmp_path / "other", rows=299)
    os.replace(other.path(other_digest), store.path(digest))  # readable, wrong rows
    verdict = verify_artifact(store.path(digest))
    assert not verdict.ok and "differs from its name" in verdict.reason


def test_garbled_sidecar_falls_back_to_the_rows_check(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    sidecar_path(store.path(digest)).write_text("{not json")
    verdict = verify_artifact(store.path(digest))
    assert verdict.ok and verdict.legacy


def test_quarantine_moves_artifact_and_sidecar_with_a_note(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    dest = store.quarantine(digest, "bytes digest differs")
    assert not store.exists(digest) and not sidecar_path(store.path(digest)).exists()
    assert dest.exists() and dest.with_name(dest.name + ".sum").exists()
    (note,) = notes(tmp_path)
    assert note["digest"] == digest and note["reason"] == "bytes digest differs"
    assert note["from"].endswith(store.path(digest).name)


def test_rewriting_an_artifact_replaces_a_damaged_copy(tmp_path: Path) -> None:
    store, digest = write_artifact(tmp_path)
    garble(store.path(digest))
    store2, digest2 = write_artifact(tmp_path)
    assert digest2 == digest
    assert verify_artifact(store.path(digest), deep=True).ok


# records ---------------------------------------------------------------------------------
def test_record_checksum_catches_edits_and_key_swaps() -> None:
    record = {"text": "SELECT 1", "done_reason": "stop"}
    value = encode("g:k1", record)
    assert value.startswith(MAGIC)
    assert decode("g:k1", value) == record
    edited = value.replace(b"SELECT 1", b"SELECT 2")
    assert len(edited) == len(value)
    assert intact("g:k1", edited) == "checksum mismatch"
    assert intact("g:k2", value) == "checksum mismatch"  # moved under another key
    with pytest.raises(RecordDamaged):
        decode("g:k1", edited)
    assert decode("g:k1", dict(record)) == record  # legacy plain dict: read as is


def test_rowcache_drops_a_damaged_record_and_names_it(tmp_path: Path) -> None:
    warnings: list[str] = []
    cache = RowCache(tmp_path / "cache", warn=warnings.append)
    cache.put(GEN, "x3:aa", {"text": "hello world"})
    cache.put(GEN, "x3:bb", {"text": "fine"})
    cache.close()
    db = sqlite3.connect(tmp_path / "cache" / "cache.db")
    (value,) = db.execute("SELECT value FROM Cache WHERE key = 'g:x3:aa'").fetchone()
    db.execute(
        "UPDATE Cache SET value = ? WHERE key = 'g:x3:aa'",
        (value.replace(b"hello", b"HELLO"),),
    )
    db.commit()
    db.close()
    cache = RowCache(tmp_path / "cache", warn=warnings.append)
    assert cache.has(GEN, "x3:bb") and cache.get(GEN, "x3:bb") == {"text": "fine"}
    assert not cache.has(GEN, "x3:aa")  # has() checks: a caller never skips a bad record
    assert cache.get(GEN, "x3:aa") is None
    assert cache.bad == ["g:x3:aa"]
    assert len(warnings) == 1 and "g:x3:aa" in warnings[0]
    assert list(cache.keys(GEN)) == ["x3:bb"]  # dropped
    cache.close()


def test_legacy_record_that_does_not_unpickle_is_dropped(tmp_path: Path) -> None:
    cache = RowCache(tmp_path / "cache")
    cache._cache.set("g:x3:old", {"text": "legacy"})  # how records were written before
    assert cache.get(GEN, "x3:old") == {"text": "legacy"}
    cache.close()
    db = sqlite3.connect(tmp_path / "cache" / "cache.db")
    (value,) = db.execute("SELECT value FROM Cache WHERE key = 'g:x3:old'").fetchone()
    assert pickle.loads(value) == {"text": "legacy"}
    db.execute("UPDATE Cache SET value = ? WHERE key = 'g:x3:old'", (value[:-6],))
    db.commit()
    db.close()
    cache = RowCache(tmp_path / "cache")
    assert cache.get(GEN, "x3:old") is None and cache.bad == ["g:x3:old"]
    cache.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_cache_db_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    cache = RowCache(tmp_path / "cache")
    for i in range(300):
        cache.put(GEN, f"x3:{i:04d}", {"text": "reply " * 50})
    cache.close()
    db = tmp_path / "cache" / "cache.db"
    for extra in db.parent.glob("cache.db-*"):
        extra.unlink()
    data = db.read_bytes()
    db.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(CacheUnreadable) as info:
        cache = RowCache(tmp_path / "cache")
        list(cache.keys(GEN))
        [cache.get(GEN, f"x3:{i:04d}") for i in range(300)]
    assert str(db) in info.value.message
    assert "fdbuild doctor --repair" in info.value.message


def test_the_funnel_reads_only_artifacts_that_verify(tmp_path: Path) -> None:
    from fdbuild.funnel import artifact_reader

    store, digest = write_artifact(tmp_path, rows=20)
    rows = artifact_reader(ArtifactStore(store.directory))(digest, ["n", "missing"])
    assert rows is not None and [r["n"] for r in rows] == list(range(20))
    garble(store.path(digest))
    assert artifact_reader(ArtifactStore(store.directory))(digest, ["n"]) is None
