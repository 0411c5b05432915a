"""A Ray cluster for the Ray tests: the one CI started (``$FDBUILD_RAY_ADDRESS``), or one
this session starts with ``ray start --head`` and stops at its end.

Only 127.0.0.1 is used: ``--node-ip-address=127.0.0.1``, and
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, without which Ray replaces a loopback address
with the machine's network one; token authentication is off (``RAY_AUTH_MODE``), so the
tests do not depend on a ``~/.ray/auth_token`` left on the machine. A cluster of this session's own runs ``ray start
--block`` in a process group of its own with a private ``--temp-dir``: ending that
process ends exactly its Ray processes (``ray stop`` would end every Ray on the machine),
and the ``ray start`` cluster a developer may run is not the one ``ray.init()`` finds.

Without Ray installed the tests skip, except under CI (``$CI`` set), where they fail:
the CI image installs the ``ray`` extra, so a missing Ray there is a broken setup.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ADDRESS_ENV = "FDBUILD_RAY_ADDRESS"
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # a loopback cluster of the tests' own: no token, whatever ~/.ray/auth_token holds
    # (Ray enables token auth for `ray start` when that file exists, but a driver that
    # connects by address only sends one with RAY_AUTH_MODE=token)
    "RAY_AUTH_MODE": "disabled",
}
START_TIMEOUT_S = 120

# Before anything imports ray: it reads these once, at import.
for _name, _value in LOOPBACK_ENV.items():
    os.environ.setdefault(_name, _value)


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        message = "ray is not installed (pip install -e '.[ray]')"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the Ray tests")
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of a running Ray cluster (``host:port``), for ``--ray-address``."""
    require_ray()
    given = os.environ.get(ADDRESS_ENV)
    if given:
        yield given
        return
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="fdr-")  # short: Ray's socket paths must fit 107 chars
    log_path = Path(temp_dir) / "ray-start.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                _ray_cli(),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--num-cpus=2",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
            ],
            env={**os.environ, **LOOPBACK_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_started(proc, log_path)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_started(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until ``ray start --block`` says it is up (it then blocks); its output on failure."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "block forever" in text:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"ray start --head exited {proc.returncode}:\n{text[-4000:]}")
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError("ray start --head did not start in time:\n" + log_path.read_text()[-4000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT: ``ray start --block`` then ends the processes it started; SIGKILL to the
    process group if it does not within 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def worker_pids_from(folder: Path) -> list[int]:
    """Pids written by the tests' slow check (one file per pid) in ``folder``."""
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
