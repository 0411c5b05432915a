"""The project root and its state folder; the build mutex.

A root is the nearest folder, upwards from the current one, holding ``fdbuild.lock`` or
``.fdbuild/`` (SPEC 1). A build takes ``StoreMutex`` (an flock on
``.fdbuild/build.mutex``) so two builds never interleave writes to the lock.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fdbuild.errors import BuildBusy

LOCK_NAME = "fdbuild.lock"
STATE_NAME = ".fdbuild"


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_NAME

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def objects_dir(self) -> Path:
        return self.state_dir / "objects"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    def exists(self) -> bool:
        return self.lock_path.exists() or self.state_dir.exists()

    def relative(self, path: Path) -> str:
        try:
            return Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()
        except ValueError:
            return Path(path).resolve().as_posix()


def find_project(start: Path | None = None, root: Path | None = None) -> Project:
    """The explicit ``--root``, else the nearest marked folder, else ``start`` itself."""
    if root is not None:
        return Project(Path(root).resolve())
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / LOCK_NAME).exists() or (folder / STATE_NAME).is_dir():
            return Project(folder)
    return Project(here)


class StoreMutex:
    """Exclusive flock on the project's state; waits (saying so) while another build runs."""

    def __init__(self, project: Project, *, wait_s: float = 3600.0, on_wait=None) -> None:
        self.path = project.state_dir / "build.mutex"
        self.wait_s = wait_s
        self.on_wait = on_wait
        self._fh: TextIO | None = None

    def __enter__(self) -> StoreMutex:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        deadline = time.monotonic() + self.wait_s
        told = False
        while True:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and self.on_wait is not None:
                    self.on_wait(self._holder())
                    told = True
                if time.monotonic() > deadline:
                    self._fh.close()
                    raise BuildBusy(
                        f"another fdbuild build holds {self.path} ({self._holder()}); "
                        "wait for it to finish"
                    ) from None
                time.sleep(0.2)
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"pid {os.getpid()}\n")
        self._fh.flush()
        return self

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown pid"
        except OSError:
            return "unknown pid"

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
