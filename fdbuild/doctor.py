"""``fdbuild doctor``: check everything under ``.fdbuild/`` and the lock; ``--repair`` moves
what is bad out of the way so the next build heals.

Checked (docs/state.md, "fdbuild doctor"):

- every artifact: its bytes against the digest recorded when written, that it is readable
  Parquet, and that its rows' digest is its name (a legacy artifact without a sidecar:
  rows only); sidecars whose artifact is gone;
- the row cache: that SQLite opens it and ``PRAGMA quick_check`` passes, then every
  record's checksum and that it unpickles;
- ``fdbuild.lock`` and every run record: that they load (``load_lock``, ``parse_run``; the kept copies of lock entries under ``runs/from-lock/`` too).

Repairs: a damaged artifact goes to ``.fdbuild/quarantine/`` (the build rebuilds it from
the row cache); a damaged cache record is deleted (recomputed when next needed); a cache
SQLite cannot open goes to quarantine whole (the next build starts empty and asks the
teachers again); a cache that opens but fails ``quick_check`` goes to quarantine and every
record that still reads and verifies is copied into a fresh one; an unreadable run record
goes to quarantine; legacy artifacts and records get their digest or checksum written.
The lock is never touched: a bad lock is reported (restore it from version control).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fdbuild.errors import FdbuildError
from fdbuild.lockfile import FROM_LOCK_DIR, load_lock
from fdbuild.project import Project, StoreMutex
from fdbuild.runs import parse_run
from fdbuild.store.objects import ArtifactStore
from fdbuild.store.quarantine import quarantine, quarantine_dir
from fdbuild.store.records import RecordDamaged, decode, is_legacy
from fdbuild.store.rowcache import RowCache, Unpicklable
from fdbuild.store.verify import verify_artifact, write_sidecar

_SPACES = ("g:", "t:", "e:", "m:")


@dataclass
class Finding:
    """One bad thing: what, where, why, and what ``--repair`` does (or did) about it."""

    kind: str
    """artifact, sidecar, cache, record, lock, run"""
    path: str
    problem: str
    repair: str
    repaired: bool = False
    key: str | None = None


@dataclass
class DoctorReport:
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    fixed: dict[str, int] = field(default_factory=dict)
    """Upgrades done by --repair that were not problems (legacy digests written)."""
    repair: bool = False

    @property
    def clean(self) -> bool:
        """Nothing bad is left (with --repair: everything found was repaired)."""
        return all(f.repaired for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "repair": self.repair,
            "checked": self.checked,
            "findings": [asdict(f) for f in self.findings],
            "fixed": self.fixed,
        }


def examine(project: Project, *, repair: bool = False) -> DoctorReport:
    """Check (and with ``repair``, fix) the project's state. Never raises for bad state."""
    report = DoctorReport(repair=repair)
    if not project.state_dir.exists() and not project.lock_path.exists():
        return report
    if repair:
        with StoreMutex(project):
            _examine(project, report)
    else:
        _examine(project, report)
    return report


def _examine(project: Project, report: DoctorReport) -> None:
    _artifacts(project, report)
    _cache(project, report)
    _lock(project, report)
    _runs(project, report)
    q = quarantine_dir(project.state_dir)
    report.checked["quarantined"] = (
        sum(1 for p in q.iterdir() if not p.name.endswith(".why.json")) if q.exists() else 0
    )


def _rel(project: Project, path: Path) -> str:
    return project.relative(path)


# artifacts -----------------------------------------------------------------------------
def _artifacts(project: Project, report: DoctorReport) -> None:
    store = ArtifactStore(project.objects_dir)
    count = legacy = 0
    for digest in sorted(store.all_digests()):
        path = store.path(digest)
        count += 1
        verdict = verify_artifact(path, deep=True)
        if verdict.ok:
            if verdict.legacy:
                legacy += 1
                if report.repair and verdict.bytes_digest:
                    write_sidecar(path, verdict.bytes_digest, verdict.size, verdict.rows or 0)
                    report.fixed["artifact_digests_written"] = (
                        report.fixed.get("artifact_digests_written", 0) + 1
                    )
            continue
        if verdict.suspect_writer:
            report.findings.append(
                Finding("artifact", _rel(project, path), verdict.reason, "none (not damage)")
            )
            continue
        finding = Finding(
            "artifact",
            _rel(project, path),
            verdict.reason,
            "move to .fdbuild/quarantine/; the next build rebuilds it from the row cache",
        )
        if report.repair:
            dest = store.quarantine(digest, verdict.reason)
            finding.repair = f"moved to {_rel(project, dest)}; the next build rebuilds it"
            finding.repaired = True
        report.findings.append(finding)
    for side in store.orphan_sidecars():
        finding = Finding("sidecar", _rel(project, side), "its artifact is gone", "delete it")
        if report.repair:
            side.unlink(missing_ok=True)
            finding.repaired = True
        report.findings.append(finding)
    report.checked["artifacts"] = count
    report.checked["legacy_artifacts"] = legacy


# the row cache -------------------------------------------------------------------------
def _quick_check(db: Path) -> str:
    """'' when SQLite's quick_check passes, else what it says."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    lines = [str(r[0]) for r in rows]
    return "" if lines == ["ok"] else "; ".join(lines[:3])


def _cache(project: Project, report: DoctorReport) -> None:
    directory = project.cache_dir
    db = directory / "cache.db"
    report.checked["cache_records"] = 0
    if not db.exists():
        return
    problem = _quick_check(db)
    try:
        cache = RowCache(directory, readonly=True)
    except FdbuildError as exc:
        _bad_cache(project, report, problem or exc.message, salvage=False)
        return
    try:
        _records(project, cache, report)
    except FdbuildError as exc:  # corruption found while reading
        problem = problem or exc.message
    finally:
        cache.close()
    if problem:
        _bad_cache(project, report, problem, salvage=True)


def _bad_cache(project: Project, report: DoctorReport, problem: str, *, salvage: bool) -> None:
    directory = project.cache_dir
    finding = Finding(
        "cache",
        _rel(project, directory / "cache.db"),
        f"SQLite cannot read it: {problem}",
        "move the cache to .fdbuild/quarantine/"
        + (", copying every record that still verifies into a fresh cache" if salvage else "")
        + "; the next build asks the teachers again for what was lost",
    )
    if report.repair:
        dest = quarantine(project.state_dir, directory, f"SQLite cannot read it: {problem}")
        saved = _salvage(dest, directory) if salvage else 0
        finding.repair = (
            f"moved to {_rel(project, dest)}"
            + (f"; {saved} intact record(s) copied into a fresh cache" if salvage else "")
            + "; the next build asks the teachers again for what was lost"
        )
        finding.repaired = True
    report.findings.append(finding)


def _salvage(old_dir: Path, new_dir: Path) -> int:
    """Copy every record that reads and verifies from a damaged cache into a fresh one."""
    saved = 0
    try:
        old = RowCache(old_dir, readonly=True)
    except FdbuildError:
        return 0
    new = RowCache(new_dir)
    try:
        for space in _SPACES:
            try:
                keys = list(old.keys(space))
            except FdbuildError:
                continue
            for key in keys:
                try:
                    record = decode(space + key, old.get_raw(space, key))
                except (RecordDamaged, FdbuildError):
                    continue
                new.put(space, key, record)
                saved += 1
    finally:
        old.close()
        new.close()
    return saved


def _records(project: Project, cache: RowCache, report: DoctorReport) -> None:
    db = _rel(project, project.cache_dir / "cache.db")
    count = legacy = 0
    for space in _SPACES:
        for key in list(cache.keys(space)):
            count += 1
            full = space + key
            raw = cache.get_raw(space, key)
            try:
                if isinstance(raw, Unpicklable):
                    raise RecordDamaged(raw.reason)
                record = decode(full, raw)
            except RecordDamaged as exc:
                finding = Finding("record", db, exc.reason, "delete it", key=full)
                if report.repair:
                    cache.delete(space, key)
                    finding.repair = "deleted; recomputed when next needed"
                    finding.repaired = True
                report.findings.append(finding)
                continue
            if is_legacy(raw):
                legacy += 1
                if report.repair:
                    cache.put(space, key, record)
                    report.fixed["record_checksums_written"] = (
                        report.fixed.get("record_checksums_written", 0) + 1
                    )
    report.checked["cache_records"] = count
    report.checked["legacy_records"] = legacy


# the lock and run records ----------------------------------------------------------------
def _lock(project: Project, report: DoctorReport) -> None:
    if not project.lock_path.exists():
        report.checked["lock"] = 0
        return
    report.checked["lock"] = 1
    try:
        load_lock(project.lock_path)
    except FdbuildError as exc:
        report.findings.append(
            Finding(
                "lock",
                _rel(project, project.lock_path),
                exc.message,
                "none: restore it from version control (`git checkout fdbuild.lock`) or "
                "delete it (the next build writes a new one); doctor never touches it",
            )
        )


def _runs(project: Project, report: DoctorReport) -> None:
    count = 0
    if project.runs_dir.exists():
        kept = project.runs_dir / FROM_LOCK_DIR  # copies of lock entries dump_lock kept
        for path in sorted([*project.runs_dir.glob("*.json"), *kept.glob("*.json")]):
            count += 1
            try:
                parse_run(project, path)
            except FdbuildError as exc:
                finding = Finding(
                    "run", _rel(project, path), exc.message, "move it to .fdbuild/quarantine/"
                )
                if report.repair:
                    dest = quarantine(project.state_dir, path, exc.message)
                    finding.repair = f"moved to {_rel(project, dest)}"
                    finding.repaired = True
                report.findings.append(finding)
    report.checked["runs"] = count
