"""The faults a fake Ollama server can inject, and the real messages they answer with.

"500", "503" and "disconnect" fail a generation request at once, "hang" waits before it
answers, and "midstream" sends part of the reply and then the runner error, as a crashed
runner does. Faults apply only after a request is validated.
"""

from __future__ import annotations

FAULTS = frozenset({"500", "503", "disconnect", "midstream", "hang"})
# Two spaces, as in ErrMaxQueue (server/sched.go).
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
CRASH_MESSAGE = "llama runner process has terminated: exit status 2"
MIDSTREAM_MESSAGE = "an error was encountered while running the model: unexpected EOF"


def check_fault(value: str) -> str:
    if value not in FAULTS:
        raise ValueError(f"unknown fault {value!r}; choose one of {sorted(FAULTS)}")
    return value
