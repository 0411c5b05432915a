"""Providers by name; built from a teacher spec. Imports are lazy (start-up time)."""

from __future__ import annotations

from typing import Any

from fdbuild.providers.base import Provider, TeacherIdentity, TeacherRequest, TeacherResponse

__all__ = ["Provider", "TeacherIdentity", "TeacherRequest", "TeacherResponse", "make_provider"]


def make_provider(spec: Any) -> Provider:
    """A provider for one teacher spec (``fdbuild.spec.model`` teacher models)."""
    if spec.provider == "ollama":
        from fdbuild.providers.ollama import OllamaProvider

        return OllamaProvider(
            model=spec.model, host=spec.host, timeout_s=spec.timeout_s, think=spec.think
        )
    if spec.provider == "llamacpp":
        from fdbuild.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(
            model=spec.model, model_path=spec.model_path, n_ctx=spec.n_ctx, n_threads=spec.n_threads
        )
    if spec.provider == "openai":
        from fdbuild.providers.openai import OpenAIProvider

        return OpenAIProvider(
            model=spec.model,
            base_url=spec.base_url,
            api_key_env=spec.api_key_env,
            revision=spec.revision,
            timeout_s=spec.timeout_s,
            server=spec.server,
            extra_body=spec.extra_body,
        )
    raise ValueError(f"unknown provider {spec.provider!r}")
