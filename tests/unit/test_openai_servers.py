"""openai teachers: options under each server's field names, refused at load when the
server has none, extra_body sent verbatim and keyed, a local model file's digest (issue 10)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fdbuild.errors import TeacherCallError
from fdbuild.execute.explain import show_digest
from fdbuild.providers.base import TeacherRequest
from fdbuild.providers.openai import OpenAIProvider, request_body
from tests.support.project import ProjectDir, questions_jsonl

MESSAGES = ({"role": "user", "content": "Count the users."},)
OPTIONS = {"temperature": 0.2, "seed": 7, "repeat_penalty": 1.3, "top_k": 20, "num_predict": 64}


def body(server: str | None, **options: Any) -> dict[str, Any]:
    return request_body("m", TeacherRequest(MESSAGES, options or dict(OPTIONS)), server)


@pytest.mark.parametrize(
    ("server", "field"),
    [
        ("llama-cpp-python", "repeat_penalty"),
        ("llamacpp", "repeat_penalty"),
        ("vllm", "repetition_penalty"),
        ("sglang", "repetition_penalty"),
        (None, "repetition_penalty"),  # unset: the earlier mapping, unchanged
    ],
)
def test_repeat_penalty_goes_under_the_servers_own_name(server: str | None, field: str) -> None:
    sent = body(server)
    assert sent[field] == 1.3
    assert {"repeat_penalty", "repetition_penalty"} - {field} - set(sent) == {
        "repeat_penalty",
        "repetition_penalty",
    } - {field}
    assert sent["max_tokens"] == 64 and sent["top_k"] == 20 and "num_predict" not in sent


def test_an_option_the_server_lacks_fails_the_request() -> None:
    with pytest.raises(TeacherCallError, match="typical_p") as info:
        body("llama-cpp-python", typical_p=0.9)
    assert info.value.reason == "unsupported_option" and not info.value.retryable
    with pytest.raises(TeacherCallError, match="top_k"):
        body("openai", top_k=3)


def test_extra_body_is_sent_verbatim() -> None:
    sent = request_body(
        "m", TeacherRequest(MESSAGES, {"seed": 1}), "llama-cpp-python", {"mirostat_mode": 2}
    )
    assert sent["mirostat_mode"] == 2 and sent["seed"] == 1


class Served:
    """A scripted OpenAI-compatible server (httpx MockTransport: no socket)."""

    def __init__(self, models: list[dict[str, Any]], props: dict[str, Any] | None = None):
        self.models, self.props, self.bodies = models, props, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": self.models})
        if request.url.path == "/props" and self.props is not None:
            return httpx.Response(200, json=self.props)
        if request.url.path == "/v1/chat/completions":
            self.bodies.append(json.loads(request.content))
            return httpx.Response(
                200, json={"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
            )
        return httpx.Response(404, json={"error": {"message": "not found"}})


def provider(served: Served, model: str, **kw: Any) -> OpenAIProvider:
    p = OpenAIProvider(model=model, base_url="http://127.0.0.1:9/v1", **kw)
    p._client = httpx.AsyncClient(transport=httpx.MockTransport(served))
    return p


def resolve(p: OpenAIProvider) -> Any:
    async def go() -> Any:
        try:
            return await p.resolve()
        finally:
            await p.aclose()

    return asyncio.run(go())


@pytest.fixture(autouse=True)
def memo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FDBUILD_CACHE_DIR", str(tmp_path / "memo"))


def test_llama_cpp_python_model_path_id_is_hashed(tmp_path: Path) -> None:
    weights = tmp_path / "student.gguf"
    weights.write_bytes(b"gguf weights")
    served = Served([{"id": str(weights), "object": "model", "owned_by": "me"}])
    identity = resolve(provider(served, str(weights), server="llama-cpp-python"))
    assert identity.digest == "sha256:" + hashlib.sha256(b"gguf weights").hexdigest()
    assert identity.key_parts()["server"] == "llama-cpp-python"


def test_llama_server_props_model_path_is_hashed(tmp_path: Path) -> None:
    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"other weights")
    served = Served([{"id": "local"}], props={"model_path": str(weights)})
    identity = resolve(provider(served, "local", server="llamacpp", revision="ignored"))
    assert identity.digest == "sha256:" + hashlib.sha256(b"other weights").hexdigest()


def test_without_server_or_extra_body_the_key_parts_are_unchanged() -> None:
    identity = resolve(provider(Served([{"id": "m"}]), "m", revision="r1"))
    assert identity.key_parts() == {"provider": "openai", "model": "m", "digest": "rev:r1"}
    keyed = resolve(provider(Served([{"id": "m"}]), "m", revision="r1", extra_body={"x": 1}))
    assert keyed.key_parts()["extra_body"] == {"x": 1}


def test_digests_are_shortened_without_garbling() -> None:
    assert show_digest("rev:smollm2-135m-q4") == "rev:smollm2-135m-q4"
    assert show_digest("unversioned:/models/a.gguf") == "unversioned:/models/a.gguf"
    assert show_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert show_digest("cd" * 32) == "cdcdcdcdcdcd"


TARGET = """fdbuild: 1
name: o
teachers:
  main:
    provider: openai
    model: m
    base_url: http://127.0.0.1:9/v1
    server: {server}
nodes:
  q: {{kind: source, path: q.jsonl, id: task_id}}
  a:
    kind: generate
    input: q
    teacher: main
    template: "{{question}}"
    decode: {{temperature: 0.2, typical_p: 0.9}}
"""


def test_an_option_the_server_lacks_is_a_load_error(project: ProjectDir) -> None:
    project.gen({"t.yaml": TARGET.format(server="vllm"), "q.jsonl": questions_jsonl(2)})
    result = project.build("t.yaml", expect=2)
    assert "t.yaml:16: decode option 'typical_p' at nodes.a.decode.typical_p" in result.stderr
    assert "extra_body" in result.stderr
    swapped = project.build("t.yaml", "--set", "teachers.main.server=openai", "--dry-run", expect=2)
    assert "(after --set teachers.main.server=openai)" in swapped.stderr
    project.gen({"t.yaml": TARGET.format(server="llamacpp")})
    plan = project.build("t.yaml", "--dry-run", expect=0)  # llama-server has typical_p
    assert "teacher main unreachable" in plan.stderr
