"""A teacher's host pool: which host gets a request, benching and probing, failover,
the start-up identity check across hosts, the breaker meaning every host down, and the
``hosts:`` field of a target file. Providers are scripted: no sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fdbuild.errors import (
    HostsDisagree,
    ProviderUnavailable,
    SpecError,
    TeacherCallError,
    TeacherChanged,
)
from fdbuild.execute import teachers as teachers_mod
from fdbuild.execute.hosts import Host, HostPool, host_fault
from fdbuild.execute.identity import IdentityWatch
from fdbuild.execute.teachers import UNAVAILABLE, TeacherPool
from fdbuild.providers import Provider, TeacherIdentity, TeacherRequest, TeacherResponse
from fdbuild.spec.load import load_target
from fdbuild.spec.model import OllamaTeacher, OpenAITeacher
from fdbuild.store.rowcache import GEN, RowCache

REQUEST = TeacherRequest(messages=({"role": "user", "content": "q"},), options={"seed": 1})
DIGEST = "a" * 64
OTHER = "b" * 64


class FakeHost(Provider):
    """One scripted server: a digest for resolve(), replies or errors for generate()."""

    name = "ollama"

    def __init__(self, url: str, digest: str = DIGEST) -> None:
        self.host = url
        self.digest: str | None = digest
        self.up = True
        self.fail_with: TeacherCallError | None = None
        self.calls = 0
        self.resolves = 0
        self.gate: asyncio.Event | None = None  # generate() waits on it when set

    async def resolve(self) -> TeacherIdentity:
        self.resolves += 1
        if not self.up:
            raise ProviderUnavailable(f"cannot reach {self.host}")
        if self.digest is None:
            from fdbuild.errors import ModelNotFound

            raise ModelNotFound(f"model 'm:latest' is not on {self.host}")
        return TeacherIdentity(provider="ollama", model="m:latest", digest=self.digest)

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if not self.up:
            raise TeacherCallError(f"{self.host} refused", retryable=True, reason="connection")
        if self.fail_with is not None:
            raise self.fail_with
        return TeacherResponse(text=f"from {self.host}")


def fleet(
    monkeypatch: pytest.MonkeyPatch,
    urls: list[Any],
    *,
    retries: int = 0,
    concurrency: int = 2,
) -> tuple[TeacherPool, Any, dict[str, FakeHost], list[str]]:
    """A TeacherPool whose teacher 'main' has ``hosts: urls``, each a FakeHost."""
    fakes: dict[str, FakeHost] = {}

    def make(spec: Any, base_dir: Any = None) -> Provider:
        fakes[spec.host] = FakeHost(spec.host)
        return fakes[spec.host]

    monkeypatch.setattr(teachers_mod, "make_provider", make)
    notes: list[str] = []
    pool = TeacherPool(
        offline=False, recorded={}, note=notes.append, retry_base_s=0.0, retry_cap_s=0.0
    )
    spec = OllamaTeacher(model="m", hosts=urls, retries=retries, concurrency=concurrency)
    target = SimpleNamespace(
        name="t", base_dir=Path("."), spec=SimpleNamespace(teachers={"main": spec})
    )
    pool._hosts(pool._get(target, "main"))  # type: ignore[arg-type]
    return pool, target, fakes, notes


def host(pool: TeacherPool, target: Any, url: str) -> Host:
    hosts = pool._get(target, "main").pool
    assert hosts is not None
    return next(h for h in hosts.hosts if h.url == url)


# ---------------------------------------------------------------------- selection


def test_requests_go_to_the_host_with_the_lowest_load_relative_to_its_concurrency() -> None:
    async def scenario() -> list[str]:
        hosts = [
            Host("a", 1, FakeHost("a")),
            Host("b", 4, FakeHost("b")),
            Host("c", 2, FakeHost("c")),
        ]
        pool = HostPool(hosts, name="main", base_s=0.0, cap_s=0.0)
        picked = [(await pool.acquire()) for _ in range(7)]
        assert all(p is not None for p in picked)
        # full now: the next one waits until a slot is released
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()
        pool.release(hosts[2])
        assert (await waiter) is hosts[2]
        return [p.url for p in picked if p is not None]

    order = asyncio.run(scenario())
    # loads a 0/1, b 0/4, c 0/2: ties go to the host listed first; a full after one
    assert order == ["a", "b", "c", "b", "b", "c", "b"]
    assert order.count("a") == 1 and order.count("b") == 4 and order.count("c") == 2


def test_capacity_is_the_sum_of_the_hosts_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    pool, target, _, _ = fleet(
        monkeypatch, ["http://a:1", {"url": "http://b:1", "concurrency": 5}], concurrency=3
    )
    assert pool.capacity(target, "main") == 8
    single = SimpleNamespace(
        spec=SimpleNamespace(teachers={"one": OllamaTeacher(model="m", concurrency=6)})
    )
    assert pool.capacity(single, "one") == 6  # type: ignore[arg-type]


def test_host_faults_are_connection_errors_timeouts_and_5xx() -> None:
    def err(reason: str) -> TeacherCallError:
        return TeacherCallError("x", retryable=True, reason=reason)

    assert all(host_fault(err(r)) for r in ("connection", "timeout", "http_500", "http_503"))
    assert not any(
        host_fault(err(r)) for r in ("http_429", "http_400", "bad_response", "stream_error")
    )


# ---------------------------------------------------------------------- failover


def test_a_failing_host_is_benched_and_its_request_served_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        pool, target, fakes, notes = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        await pool.identity(target, "main")
        fakes["http://a:1"].up = False
        # retries=0: still served, by the other host, without using a retry
        response, attempts, _ = await pool.call(target, "main", REQUEST)
        assert response.text == "from http://b:1" and attempts == 1 + (fakes["http://a:1"].calls)
        a = host(pool, target, "http://a:1")
        assert fakes["http://a:1"].calls == 1 and a.benched and a.benched_count == 1
        for _ in range(10):
            response, _, _ = await pool.call(target, "main", REQUEST)
            assert response.text == "from http://b:1"
        assert fakes["http://a:1"].calls == 1  # benched: no request while its probe fails
        assert any("http://a:1" in n and "benched" in n for n in notes)
        # it comes back: the probe succeeds, and it takes work again
        fakes["http://a:1"].up = True
        assert a.probe_task is not None
        await asyncio.wait_for(a.probe_task, 10)  # ends when a probe answers
        assert not a.benched
        served = {(await pool.call(target, "main", REQUEST))[0].text for _ in range(4)}
        assert "from http://a:1" in served
        report = pool.host_report()["main"]
        by_url = {r["url"]: r for r in report}
        assert by_url["http://a:1"]["failures"] == 1 and by_url["http://a:1"]["benched"] == 1
        assert by_url["http://b:1"]["failures"] == 0 and by_url["http://b:1"]["requests"] >= 11
        assert by_url["http://b:1"]["p50_s"] is not None
        await pool.aclose()

    asyncio.run(scenario())


def test_a_teacher_of_one_host_is_never_benched_its_retries_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        pool, target, fakes, _ = fleet(monkeypatch, ["http://a:1"], retries=2)
        await pool.identity(target, "main")
        fakes["http://a:1"].fail_with = TeacherCallError(
            "HTTP 500: crashed", retryable=True, reason="http_500"
        )
        with pytest.raises(TeacherCallError) as info:
            await pool.call(target, "main", REQUEST)
        assert info.value.reason == "http_500" and info.value.attempts == 3  # type: ignore[attr-defined]
        a = host(pool, target, "http://a:1")
        assert not a.benched and a.benched_count == 0 and a.probe_task is None
        assert a.failures == 3
        await pool.aclose()

    asyncio.run(scenario())


def test_an_error_of_the_request_itself_is_retried_on_the_same_terms_not_benched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        pool, target, fakes, _ = fleet(monkeypatch, ["http://a:1", "http://b:1"], retries=2)
        await pool.identity(target, "main")
        for fake in fakes.values():
            fake.fail_with = TeacherCallError("HTTP 400: bad", retryable=False, reason="http_400")
        with pytest.raises(TeacherCallError) as info:
            await pool.call(target, "main", REQUEST)
        assert info.value.reason == "http_400" and info.value.attempts == 1  # type: ignore[attr-defined]
        assert not any(host(pool, target, u).benched for u in fakes)
        for fake in fakes.values():
            fake.fail_with = TeacherCallError("HTTP 429", retryable=True, reason="http_429")
        with pytest.raises(TeacherCallError) as info:
            await pool.call(target, "main", REQUEST)
        assert info.value.attempts == 3  # type: ignore[attr-defined]
        assert not any(host(pool, target, u).benched for u in fakes)
        await pool.aclose()

    asyncio.run(scenario())


def test_the_breaker_opens_only_when_every_host_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        pool, target, fakes, notes = fleet(
            monkeypatch, ["http://a:1", "http://b:1", "http://c:1"], retries=3, concurrency=1
        )
        await pool.identity(target, "main")
        fakes["http://a:1"].up = fakes["http://b:1"].up = False
        for _ in range(30):  # two of three down: every row still served
            response, _, _ = await pool.call(target, "main", REQUEST)
            assert response.text == "from http://c:1"
        assert not any("sending it nothing more" in n for n in notes)
        fakes["http://c:1"].up = False
        reasons = []
        for _ in range(12):
            try:
                await pool.call(target, "main", REQUEST)
            except TeacherCallError as exc:
                reasons.append(exc.reason)
        assert reasons[-1] == UNAVAILABLE and len(reasons) == 12
        down = [n for n in notes if "sending it nothing more" in n]
        assert len(down) == 1 and "every host" in down[0]
        sent = sum(f.calls for f in fakes.values())
        for _ in range(5):
            with pytest.raises(TeacherCallError):
                await pool.call(target, "main", REQUEST)
        assert sum(f.calls for f in fakes.values()) == sent  # nothing more is sent
        await pool.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))


# ---------------------------------------------------------------------- identity


def test_hosts_with_different_digests_stop_before_any_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        pool, target, fakes, _ = fleet(monkeypatch, ["http://a:1", "http://b:1", "http://c:1"])
        fakes["http://b:1"].digest = OTHER
        fakes["http://c:1"].digest = None  # no such model there
        with pytest.raises(HostsDisagree) as info:
            await pool.identity(target, "main")
        message = info.value.message
        assert f"http://a:1 has digest {DIGEST}" in message
        assert f"http://b:1 has digest {OTHER}" in message
        assert "http://c:1 does not have the model" in message
        assert sum(f.calls for f in fakes.values()) == 0
        await pool.aclose()

    asyncio.run(scenario())
    assert HostsDisagree("x").exit_code != 0


def test_an_unreachable_host_at_the_start_is_benched_and_the_build_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        pool, target, fakes, notes = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        fakes["http://a:1"].up = False
        identity = await pool.identity(target, "main")
        assert identity.digest == DIGEST
        assert host(pool, target, "http://a:1").benched
        assert any("1 of 2 hosts unreachable" in n and "http://a:1" in n for n in notes)
        response, attempts, _ = await pool.call(target, "main", REQUEST)
        assert response.text == "from http://b:1" and attempts == 1
        await pool.aclose()

        pool, target, fakes, _ = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        for fake in fakes.values():
            fake.up = False
        with pytest.raises(ProviderUnavailable, match="none of its 2 hosts answered"):
            await pool.identity(target, "main")
        await pool.aclose()

    asyncio.run(scenario())


def test_a_host_back_with_other_weights_that_never_served_is_excluded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        pool, target, fakes, notes = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        fakes["http://a:1"].up = False
        await pool.identity(target, "main")
        a = host(pool, target, "http://a:1")
        fakes["http://a:1"].up = True
        fakes["http://a:1"].digest = OTHER
        assert a.probe_task is not None
        await asyncio.wait_for(a.probe_task, 10)  # ends when a probe answers
        assert a.excluded and a.benched
        assert any("other weights" in n and OTHER in n for n in notes)
        for _ in range(6):
            assert (await pool.call(target, "main", REQUEST))[0].text == "from http://b:1"
        assert fakes["http://a:1"].calls == 0
        assert pool.host_report()["main"][0]["excluded"]
        await pool.aclose()

    asyncio.run(scenario())


def test_a_host_whose_digest_changes_mid_build_is_a_teacher_change_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def scenario() -> None:
        pool, target, fakes, _ = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        cache = RowCache(tmp_path / "cache")
        watch = IdentityWatch(pool, cache, interval_s=3600, enabled=True)
        await pool.identity(target, "main")
        sid = watch.track(target, "main")
        watch.put(sid, GEN, "confirmed", {"text": "x"})
        await watch.check()
        watch.put(sid, GEN, "unconfirmed", {"text": "y"})
        fakes["http://b:1"].digest = OTHER
        with pytest.raises(TeacherChanged) as info:
            await watch.check()
        message = info.value.message
        assert "on host http://b:1" in message and DIGEST in message and OTHER in message
        assert cache.has(GEN, "confirmed") and not cache.has(GEN, "unconfirmed")
        with pytest.raises(TeacherChanged):
            await pool.call(target, "main", REQUEST)
        cache.close()
        await pool.aclose()

    asyncio.run(scenario())


def test_an_unreachable_host_leaves_the_journal_unconfirmed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def scenario() -> None:
        pool, target, fakes, _ = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        cache = RowCache(tmp_path / "cache")
        watch = IdentityWatch(pool, cache, interval_s=3600, enabled=True)
        await pool.identity(target, "main")
        sid = watch.track(target, "main")
        watch.put(sid, GEN, "early", {"text": "x"})
        fakes["http://a:1"].up = False
        await watch.check()  # b confirms, a cannot be asked: nothing confirmed
        fakes["http://a:1"].up = True
        fakes["http://a:1"].digest = OTHER
        with pytest.raises(TeacherChanged, match="on host http://a:1"):
            await watch.check()
        assert not cache.has(GEN, "early")
        cache.close()
        await pool.aclose()

    asyncio.run(scenario())


def test_hosts_are_never_keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[dict[str, Any], str]:
        pool, target, _, _ = fleet(monkeypatch, ["http://a:1", "http://b:1"])
        identity = await pool.identity(target, "main")
        await pool.aclose()
        return identity.key_parts(), pool.offline_key(target.spec.teachers["main"])

    parts, key = asyncio.run(scenario())
    assert "http" not in repr(parts) and "http" not in key
    one = OllamaTeacher(model="m", host="http://a:1")
    assert TeacherPool.offline_key(one) == key


# ---------------------------------------------------------------------- the field


def write(tmp_path: Path, teacher: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(
        "fdbuild: 1\nteachers:\n  main:\n"
        + teacher
        + "nodes:\n  s: {kind: source, path: x.jsonl}\n",
        encoding="utf-8",
    )
    return path


def test_hosts_and_host_are_mutually_exclusive_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "    model: m\n    host: http://a:1\n    hosts: [http://b:1]\n")
    with pytest.raises(SpecError) as info:
        load_target(path)
    assert f"{path}:6: teachers.main.hosts:" in info.value.message
    assert "mutually exclusive" in info.value.message
    path = write(
        tmp_path,
        "    provider: openai\n    model: m\n    base_url: http://a:1/v1\n"
        "    hosts: [http://b:1/v1]\n",
    )
    with pytest.raises(SpecError, match=r":7: teachers.main.hosts: 'base_url' and 'hosts'"):
        load_target(path)


def test_hosts_take_urls_or_mappings_and_refuse_a_url_twice(tmp_path: Path) -> None:
    spec = OpenAITeacher(
        provider="openai",
        model="m",
        hosts=["http://a:8000/v1", {"url": "http://b:8000/v1", "concurrency": 16}],
    )
    assert [h if isinstance(h, str) else h.concurrency for h in spec.hosts or []] == [
        "http://a:8000/v1",
        16,
    ]
    path = write(tmp_path, "    model: m\n    hosts: [http://a:1, 'http://a:1/']\n")
    with pytest.raises(SpecError, match="listed twice"):
        load_target(path)
    path = write(tmp_path, "    provider: openai\n    model: m\n")
    with pytest.raises(SpecError, match="needs 'base_url'.*or 'hosts'"):
        load_target(path)
    path = write(tmp_path, "    model: m\n    hosts: [{url: http://a:1, concurency: 2}]\n")
    with pytest.raises(SpecError, match="concurency"):
        load_target(path)
