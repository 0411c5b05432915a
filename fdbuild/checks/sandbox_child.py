"""The child side of the python_tests sandbox: set up the layers, then run untrusted code.

This file is executed by ``sandbox.py`` as ``python -I -S -B sandbox_child.py`` with a
scrubbed environment, in a new session, with stdin carrying a JSON config. It must use
the standard library only (``-S``: no site-packages, so not even fdbuild is importable)
and have no side effects on import (``sandbox.py`` imports it for ``split_tests``).

Order matters: everything the runner needs is imported and read *before* the untrusted
code runs; the kernel layers (network and mount namespaces, a dedicated uid) are tried
first, as root; each one that cannot be had is replaced by an in-interpreter refusal
(an audit hook), so a non-root user still gets a sandbox, only a weaker one. The layers
that became active are reported to the parent on the result pipe before any untrusted
code runs.

The result pipe is a plain file descriptor: a candidate written to forge its own verdict
could write to it. The sandbox protects the machine from the code, not the verdict from
a deliberately forging candidate.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
_MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
_DETAIL_CHARS = 300
_PROCESS_EVENTS = frozenset(
    "os.fork os.forkpty os.system os.exec os.posix_spawn os.spawn subprocess.Popen "
    "os.kill os.killpg signal.pthread_kill pty.spawn".split()
)
_SOCKET_EVENTS = frozenset(
    "socket.__new__ socket.connect socket.bind socket.sendto socket.sendmsg "
    "socket.getaddrinfo socket.gethostbyname".split()
)
_PATH_EVENTS = {  # event -> indexes of the path arguments that must stay inside the sandbox
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.chdir": (),
    "shutil.rmtree": (0,),
}
_BLOCKED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "mmap"})


def split_tests(tests: str) -> list[str]:
    """The tests as units, each counted once: a top-level ``assert`` statement, or a
    top-level ``def test_...`` function. Other top-level statements (imports, helpers)
    are setup, run in order. Raises SyntaxError (or ValueError) when tests do not parse.

    Returns the source of each unit; setup statements are returned with a ``#setup``
    prefix line so the runner runs them but does not count them."""
    tree = ast.parse(tests)
    units = []
    for node in tree.body:
        src = ast.get_source_segment(tests, node) or ast.unparse(node)
        if isinstance(node, ast.Assert) or (
            isinstance(node, ast.FunctionDef) and node.name.startswith("test")
        ):
            units.append(src)
        else:
            units.append("#setup\n" + src)
    return units


def count_tests(tests: str) -> int:
    return sum(not unit.startswith("#setup\n") for unit in split_tests(tests))


# ----------------------------------------------------------------------------- layers


def _kernel_layers(config: dict[str, Any]) -> list[str]:
    """Network namespace, read-only filesystem but the sandbox folder, dedicated uid."""
    if not config.get("kernel") or os.geteuid() != 0:
        return []
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    layers = []
    if libc.unshare(CLONE_NEWNET) == 0:
        layers.append("netns")
    if libc.unshare(CLONE_NEWNS) == 0 and _read_only_mounts(libc, config["tmp"]):
        layers.append("ro_fs")
    if not _readable_by_all(os.path.realpath(sys.base_prefix)):
        return layers  # the stdlib would vanish for another uid (e.g. a pyenv under /root)
    uid = int(config["uid"])
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        layers.append("uid")
    except OSError:
        pass
    return layers


def _read_only_mounts(libc: Any, tmp: str) -> bool:
    """Remount every mount read-only in this (private) mount namespace, except a bind of
    the sandbox folder onto itself. True when every remount succeeded."""
    mount = libc.mount
    if mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    if mount(tmp.encode(), tmp.encode(), None, MS_BIND, None) != 0:
        return False
    _expose_stdlib(libc)
    ok = True
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        fields = line.split()
        point = _unescape(fields[4])
        if point == tmp:
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for option in fields[5].split(","):
            flags |= _MOUNT_FLAGS.get(option, 0)
        if mount(None, point.encode(), None, flags, None) != 0:
            ok = False
    return ok


def _expose_stdlib(libc: Any) -> None:
    """Make the interpreter's installation readable by the sandbox uid, in this mount
    namespace only: when an ancestor folder is closed to others (a pyenv under /root), a
    tmpfs covers that ancestor and the installation is bound back at the same path."""
    prefix = os.path.realpath(sys.base_prefix)
    parts = prefix.strip("/").split("/")
    closed = None
    for i in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:i])
        if not os.stat(ancestor).st_mode & 0o001:
            closed = ancestor
            break
    if closed is None:
        return
    fd = os.open(prefix, os.O_PATH)
    try:
        if libc.mount(b"tmpfs", closed.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=755") != 0:
            return
        os.makedirs(prefix, mode=0o755, exist_ok=True)
        libc.mount(f"/proc/self/fd/{fd}".encode(), prefix.encode(), None, MS_BIND | MS_REC, None)
    finally:
        os.close(fd)


def _readable_by_all(path: str) -> bool:
    """Whether every folder on the way to ``path`` may be traversed by anyone."""
    parts = path.strip("/").split("/")
    try:
        return all(
            os.stat("/" + "/".join(parts[:i])).st_mode & 0o001 for i in range(1, len(parts) + 1)
        )
    except OSError:
        return False


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _limits(config: dict[str, Any], layers: list[str]) -> None:
    cpu = int(config["cpu_s"])
    memory = int(config["memory_mb"]) << 20
    for limit, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_FSIZE, (int(config["fsize_mb"]) << 20,) * 2),
        (resource.RLIMIT_NOFILE, (int(config["nofile"]),) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(limit, value)
    if os.geteuid() != 0:  # not enforced for root
        own = _processes_of(os.getuid())
        nproc = int(config["nproc"]) + (0 if "uid" in layers else own)
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        layers.append("nproc")
    layers.append("rlimits")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write is an OSError


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                count += 1
        except OSError:
            pass
    return count


def _install_guard(tmp: str, layers: list[str]) -> None:
    """Refuse from inside the interpreter what no kernel layer prevents."""
    no_net = "netns" not in layers
    no_fs = "ro_fs" not in layers
    no_proc = "uid" not in layers
    if not (no_net or no_fs or no_proc):
        return
    for name in _BLOCKED_IMPORTS if no_proc else ():
        sys.modules.pop(name, None)
    root = os.path.realpath(tmp)
    realpath = os.path.realpath
    fspath = os.fspath

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True
        try:
            full = realpath(fspath(path))
        except (TypeError, ValueError):
            return False
        full = full if isinstance(full, str) else full.decode("utf-8", "replace")
        return full == root or full.startswith(root + os.sep)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if no_proc and (event in _PROCESS_EVENTS or event.startswith("ctypes.")):
            raise PermissionError(f"sandbox: {event} refused")
        if no_proc and event == "import" and args and args[0] in _BLOCKED_IMPORTS:
            raise PermissionError(f"sandbox: import {args[0]} refused")
        if no_proc and event == "open" and _other_process(args[0]):
            raise PermissionError(f"sandbox: reading {args[0]!r} refused")
        if no_net and event in _SOCKET_EVENTS:
            raise PermissionError(f"sandbox: {event} refused")
        if no_fs and event == "open" and len(args) >= 3 and _writes(args[1], args[2]):
            if not inside(args[0]):
                raise PermissionError(f"sandbox: writing {args[0]!r} refused")
        if no_fs and event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                if index < len(args) and not inside(args[index]):
                    raise PermissionError(f"sandbox: {event} {args[index]!r} refused")

    sys.addaudithook(hook)
    layers.append("audit_hook")


def _other_process(path: Any) -> bool:
    """``/proc/<pid>/...`` of another process (its environment, memory, command line):
    the same uid may read them, so without a uid of its own the code must not."""
    if isinstance(path, int):
        return False
    try:
        text = os.fsdecode(path)
    except (TypeError, ValueError):
        return True
    parts = os.path.realpath(text).split("/")
    own = ("self", "thread-self", str(os.getpid()))
    return len(parts) > 2 and parts[1] == "proc" and parts[2] not in own


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    return isinstance(flags, int) and bool(flags & write_flags)


# ----------------------------------------------------------------------------- running


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_DETAIL_CHARS]


def _run(code: str, units: list[str]) -> dict[str, Any]:
    """Run the code, then each unit in the same namespace; count the passing units."""
    namespace: dict[str, Any] = {"__name__": "__sandbox__", "__builtins__": __builtins__}
    total = sum(not u.startswith("#setup\n") for u in units)
    try:
        exec(compile(code, "<candidate>", "exec"), namespace)
    except MemoryError:
        return {"reason": "memory", "passed": 0, "total": total, "detail": "MemoryError"}
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: the code failed to load
        return {"reason": "error", "passed": 0, "total": total, "detail": _describe(exc)}
    passed, detail, memory = 0, "", False
    for unit in units:
        setup = unit.startswith("#setup\n")
        try:
            tree = compile(unit, "<tests>", "exec")
            exec(tree, namespace)
            if not setup and unit.lstrip().startswith("def "):
                name = ast.parse(unit).body[0].name  # type: ignore[attr-defined]
                namespace[name]()
        except MemoryError:
            memory = True
            detail = detail or "MemoryError"
            continue
        except BaseException as exc:  # noqa: BLE001 - a failing test, whatever it raised
            detail = detail or f"{unit.splitlines()[-1 if setup else 0][:120]} -> {_describe(exc)}"
            continue
        passed += 0 if setup else 1
    reason = "ok" if passed == total and total else "memory" if memory else "failed"
    return {"reason": reason, "passed": passed, "total": total, "detail": detail[:_DETAIL_CHARS]}


def main() -> None:
    config = json.loads(sys.stdin.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    result_fd = int(config["result_fd"])
    units = split_tests(config["tests"])
    layers = _kernel_layers(config)
    os.chdir(config["tmp"])
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": config["tmp"], "LANG": "C.UTF-8"})
    _limits(config, layers)
    _install_guard(config["tmp"], layers)
    os.write(result_fd, (json.dumps({"layers": layers}) + "\n").encode())
    result = _run(config["code"], units)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001, S110 - a closed or broken stream loses nothing
            pass
    os.write(result_fd, (json.dumps({"result": result}) + "\n").encode())
    os._exit(0)


if __name__ == "__main__":
    main()
