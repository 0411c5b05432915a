"""Running untrusted Python in a sandboxed subprocess (the parent side).

``run_tests`` starts ``sandbox_child.py`` in a fresh isolated interpreter and returns a
verdict. The layers, each used where the machine allows it (the child reports which ones
it got, and the verdict carries them):

* ``isolated``: ``python -I -S -B`` (no user site, no site-packages, no environment
  variables read, no .pyc written): tasks may use the standard library only;
* ``env``: a scrubbed environment (PATH, HOME, LANG) - the builder's variables are gone;
* ``tmpdir``: a fresh temporary working directory, removed afterwards;
* ``rlimits``: CPU seconds, address space (``memory_mb``), file size, open files, no
  core files; ``nproc``: the number of processes, where it is enforced (not for root);
* ``session``: a new session, whose process group is killed at the wall-clock deadline;
* ``output_cap``: stdout and stderr read with a cap, the run killed when it overflows;
* as root: ``netns`` (a network namespace with no interface up: no connection leaves,
  not even to 127.0.0.1), ``ro_fs`` (a private mount namespace in which every mount is
  read-only except the sandbox folder) and ``uid`` (the code runs as an unused uid,
  unique to the run, so it cannot touch files or processes of anyone else; afterwards
  every process of that uid is killed, which reaches a setsid'd, double-forked
  grandchild that the process-group kill misses);
* ``audit_hook``: for each kernel layer that is missing (not root, or a container that
  refuses namespaces), the child refuses the same things from inside the interpreter:
  sockets, writes and deletes outside its folder, starting processes, ctypes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("sandbox_child.py")
OUTPUT_LIMIT = 1 << 20
STARTUP_GRACE_S = 0.5
_UID_BASE = 1_900_000_000
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    """One run: ``reason`` is ok | failed | error | timeout | memory | output_limit."""

    reason: str
    passed: int
    total: int
    detail: str
    layers: tuple[str, ...]


def run_tests(
    code: str,
    tests: str,
    total: int,
    *,
    timeout_s: float,
    memory_mb: int,
    output_limit: int = OUTPUT_LIMIT,
    kernel: bool = True,
) -> Verdict:
    """Run ``code`` then ``tests`` (``total`` counted units) in the sandbox.

    ``kernel=False`` skips the root-only layers (the in-interpreter ones replace them), as
    on a machine where they are not permitted."""
    tmp = tempfile.mkdtemp(prefix="fdbuild-sandbox-")
    uid = _next_uid()
    if os.geteuid() == 0 and kernel:
        os.chown(tmp, uid, uid)
    os.chmod(tmp, 0o700)
    read_fd, write_fd = os.pipe()
    config = {
        "code": code,
        "tests": tests,
        "tmp": tmp,
        "uid": uid,
        "kernel": kernel,
        "cpu_s": max(1, math.ceil(timeout_s)),
        "memory_mb": memory_mb,
        "fsize_mb": 16,
        "nofile": 64,
        "nproc": 32,
        "result_fd": write_fd,
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(write_fd)
    try:
        return _supervise(proc, read_fd, config, total, timeout_s, output_limit, uid)
    finally:
        os.close(read_fd)
        shutil.rmtree(tmp, ignore_errors=True)


def _next_uid() -> int:
    """A uid no account uses, unique to this run (per process id and counter)."""
    with _uid_lock:
        n = next(_uid_counter) % 100_000
    return _UID_BASE + (os.getpid() % 1000) * 100_000 + n


def _supervise(
    proc: subprocess.Popen[bytes],
    read_fd: int,
    config: dict[str, object],
    total: int,
    timeout_s: float,
    output_limit: int,
    uid: int,
) -> Verdict:
    assert proc.stdin is not None and proc.stdout is not None
    start = time.monotonic()
    try:
        proc.stdin.write(json.dumps(config).encode())
        proc.stdin.close()
    except OSError:  # the child died before reading its config
        pass
    deadline = start + timeout_s + STARTUP_GRACE_S
    messages = bytearray()
    output = 0
    outcome = ""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(read_fd, selectors.EVENT_READ)
    open_streams = 2
    try:
        while proc.poll() is None and open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                outcome = "timeout"
                break
            for key, _ in sel.select(min(left, 0.1)):
                fd = key.fd if isinstance(key.fileobj, int) else proc.stdout.fileno()
                chunk = os.read(fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                elif fd == read_fd:
                    messages += chunk[: 1 << 16]
                else:
                    output += len(chunk)
            if output > output_limit:
                outcome = "output_limit"
                break
        if not outcome:  # the child exited (or closed both pipes): wait for its status
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                outcome = "timeout"
    finally:
        _kill_all(proc, uid if os.geteuid() == 0 and config["kernel"] else None)
        messages += _drain(read_fd)
        sel.close()
        proc.stdout.close()
    return _verdict(outcome, proc.returncode, messages, total)


def _drain(fd: int, budget_s: float = 0.5) -> bytes:
    """What is left on the result pipe, once nobody can write to it any more."""
    out = bytearray()
    os.set_blocking(fd, False)
    end = time.monotonic() + budget_s
    while time.monotonic() < end and len(out) < 1 << 16:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _kill_all(proc: subprocess.Popen[bytes], uid: int | None) -> None:
    """Kill the session's process group, then every process of the run's uid (as root)
    or of its session (otherwise), until none is left; reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    empty = 0
    for _ in range(200):
        found = _stragglers(proc.pid, uid)
        empty = 0 if found else empty + 1
        if empty == 2:  # twice: a process forked while /proc was being read shows next time
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        pass


def _stragglers(sid: int, uid: int | None) -> list[int]:
    """Live (not zombie) processes of the run: its uid, or its session / process group."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().rsplit(b")", 1)[1].split()
            owner = real_uid(int(entry)) if uid is not None else None
        except (OSError, IndexError, ValueError):
            continue
        state, pgrp, session = stat[0], int(stat[2]), int(stat[3])
        if state in (b"Z", b"X"):
            continue
        if (uid is not None and owner == uid) or session == sid or pgrp == sid:
            found.append(int(entry))
    return found


def real_uid(pid: int) -> int:
    """The real uid of a process, from ``/proc/<pid>/status``. Not the owner of
    ``/proc/<pid>``: that is root while a process that changed its uid has not exec'd
    yet (it is not dumpable), which is exactly when a forked grandchild must be found."""
    with open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    raise ValueError(f"no Uid line for {pid}")


def _messages(raw: bytes | bytearray) -> list[dict[str, object]]:
    out = []
    for line in bytes(raw).splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _layers(raw: bytes | bytearray) -> tuple[str, ...]:
    for message in _messages(raw):
        layers = message.get("layers")
        if isinstance(layers, list):
            return tuple(str(x) for x in layers)
    return ()


_BASE_LAYERS = ("isolated", "env", "tmpdir", "session", "output_cap")


def _verdict(outcome: str, code: int | None, raw: bytes | bytearray, total: int) -> Verdict:
    layers = _BASE_LAYERS + _layers(raw)
    if outcome == "timeout":
        return Verdict("timeout", 0, total, "wall-clock timeout", layers)
    if outcome == "output_limit":
        return Verdict("output_limit", 0, total, "output over the cap", layers)
    results = [m["result"] for m in _messages(raw) if isinstance(m.get("result"), dict)]
    if results:
        r = results[-1]
        assert isinstance(r, dict)
        reason = str(r.get("reason"))
        if reason not in ("ok", "failed", "error", "memory"):
            reason = "error"
        passed = min(int(r.get("passed") or 0), total)
        return Verdict(reason, passed, total, str(r.get("detail") or ""), layers)
    if code is not None and code < 0:
        sig = signal.Signals(-code)
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return Verdict("timeout", 0, total, f"killed by {sig.name} (CPU limit)", layers)
        return Verdict("error", 0, total, f"killed by {sig.name}", layers)
    return Verdict("error", 0, total, f"exited with status {code} without a result", layers)
