"""A teacher's identity asked of every one of its hosts at the start of a build.

The digest is in every generation key, and a pool of hosts is one teacher only if every
host serves the same weights. So when the identity is first resolved, every host is
asked (in parallel):

* all that answer report one digest: that is the teacher's identity (the first host's
  record, its ``server_version`` included);
* two digests differ, or a host lacks the model while another has it: ``HostsDisagree``
  naming each host with its digest; the build stops before any generation;
* a host that cannot be reached (``ProviderUnavailable``) is benched and probed later
  (``HostPool.bench_at_start``); the build goes on with the others, saying so once;
* none answers: ``ProviderUnavailable`` naming every host (or the ``ModelNotFound`` of
  a host that is up without the model);
* a host that answers with another error (a 4xx, not JSON: not a server of this kind)
  stops the build with that error: the list is wrong.

A pool of one host is asked as a single teacher always was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fdbuild.errors import HostsDisagree, ModelNotFound, ProviderError, ProviderUnavailable
from fdbuild.execute.hosts import Host, HostPool
from fdbuild.providers import TeacherIdentity

__all__ = ["resolve_hosts"]


async def resolve_hosts(
    pool: HostPool, label: str, model: str, note: Callable[[str], None] | None
) -> TeacherIdentity:
    """The teacher's identity, as every host that answers reports it (module doc)."""
    if len(pool.hosts) == 1:
        return await pool.hosts[0].provider.resolve()
    outcomes = await asyncio.gather(
        *(h.provider.resolve() for h in pool.hosts), return_exceptions=True
    )
    for outcome in outcomes:  # a bug or a cancellation is not a host's answer
        if isinstance(outcome, BaseException) and not isinstance(outcome, ProviderError):
            raise outcome
    pairs = list(zip(pool.hosts, outcomes, strict=True))
    answered = [(h, o) for h, o in pairs if isinstance(o, TeacherIdentity)]
    missing = [(h, o) for h, o in pairs if isinstance(o, ModelNotFound)]
    down = [
        (h, o)
        for h, o in pairs
        if isinstance(o, ProviderError) and not isinstance(o, ModelNotFound)
    ]
    for _, error in down:
        if not isinstance(error, ProviderUnavailable):
            raise error  # up, but not a server of this kind (a 4xx, not JSON): fix the list
    if len({o.digest for _, o in answered}) > 1 or (answered and missing):
        raise _disagree(label, model, answered, missing, down)
    if not answered:
        if missing:
            raise missing[0][1]
        detail = "; ".join(f"{h.url}: {e}" for h, e in down)
        raise ProviderUnavailable(
            f"teacher {label}: none of its {len(pool.hosts)} hosts answered ({detail})"
        )
    for host, error in down:
        pool.bench_at_start(host, str(error))
    if down and note is not None:
        note(
            f"teacher {label}: {len(down)} of {len(pool.hosts)} hosts unreachable "
            f"({', '.join(h.url for h, _ in down)}): benched and probed again later; "
            f"building with the other {len(answered)}"
        )
    return answered[0][1]


def _disagree(
    label: str,
    model: str,
    answered: list[tuple[Host, TeacherIdentity]],
    missing: list[tuple[Host, Any]],
    down: list[tuple[Host, Any]],
) -> HostsDisagree:
    listing = [f"{h.url} has digest {o.digest}" for h, o in answered]
    listing += [f"{h.url} does not have the model" for h, _ in missing]
    listing += [f"{h.url} did not answer" for h, _ in down]
    return HostsDisagree(
        f"teacher {label}: its hosts do not serve the same weights: "
        + "; ".join(listing)
        + f". Nothing was generated. Make every host serve the same {model} (e.g. "
        f"`ollama pull {model}` on each), or list only the matching ones under hosts:"
    )
