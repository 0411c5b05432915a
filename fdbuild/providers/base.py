"""The provider contract: resolve the teacher's identity, send one request, close.

A provider does no caching and no retries; the executor owns both (STYLE H7). It raises
``TeacherCallError(retryable=...)`` for a failed request, ``ProviderUnavailable`` or
``ModelNotFound`` when no request can succeed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class TeacherIdentity:
    """What names the weights that answer: part of every generation key.

    ``digest`` is the server-reported digest (Ollama: ``/api/tags`` digest, llama.cpp:
    sha256 of the GGUF file, OpenAI-compatible: reported or declared revision).
    ``server_version`` is recorded, not keyed. ``name_keyed=False`` says the digest alone
    names the weights (llama.cpp: the file's sha256), so ``model`` (the file's name) is
    shown but not keyed: a renamed copy of the same file shares every cached generation.
    """

    provider: str
    model: str
    digest: str
    server_version: str | None = None
    name_keyed: bool = True
    request: tuple[tuple[str, Any], ...] = ()
    """What else shapes every reply (openai: ``server``, ``extra_body``): keyed when set."""

    def key_parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"provider": self.provider, "model": self.model}
        if not self.name_keyed:
            del parts["model"]
        parts["digest"] = self.digest
        parts.update(self.request)
        return parts

    def record(self) -> dict[str, Any]:
        """What run records and the lock keep: the key parts, the name and the version."""
        return {
            "provider": self.provider,
            "model": self.model,
            "digest": self.digest,
            "server_version": self.server_version,
        }


@dataclass(frozen=True)
class TeacherRequest:
    """One fully rendered request. Everything here that can change the output is keyed."""

    messages: tuple[dict[str, str], ...]
    options: dict[str, Any]
    format: str | dict[str, Any] | None = None
    think: bool | str | None = None
    logprobs: bool = False
    top_logprobs: int | None = None


@dataclass(frozen=True)
class TeacherResponse:
    """A finished reply. ``done_reason == "length"`` means truncated by num_predict."""

    text: str
    done_reason: str | None = None
    thinking: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_duration_ns: int | None = None
    eval_duration_ns: int | None = None
    logprobs: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The JSON-able record stored in the row cache."""
        return {
            "text": self.text,
            "done_reason": self.done_reason,
            "thinking": self.thinking,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_duration_ns": self.total_duration_ns,
            "eval_duration_ns": self.eval_duration_ns,
            "logprobs": self.logprobs,
            **({"extra": self.extra} if self.extra else {}),
        }


class Provider(ABC):
    """One teacher endpoint. Built from a teacher spec by ``providers.make_provider``."""

    name: ClassVar[str]

    @abstractmethod
    async def resolve(self) -> TeacherIdentity:
        """Ask the server which weights stand behind the model tag (once per build)."""

    @abstractmethod
    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        """Send one request. No caching or retries here."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or models."""
