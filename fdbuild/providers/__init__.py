"""Providers by name; built from a teacher spec. Imports are lazy (start-up time).

A ``provider:`` that is not built-in is a plugin (``fdbuild.providers`` entry point,
``module:Name`` or ``./file.py:Name``; see ``fdbuild.plugins`` and docs/plugins.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fdbuild.errors import ProviderError
from fdbuild.plugins import Kind, PluginError, resolve
from fdbuild.providers.base import Provider, TeacherIdentity, TeacherRequest, TeacherResponse

__all__ = ["Provider", "TeacherIdentity", "TeacherRequest", "TeacherResponse", "make_provider"]

# built in below (each takes its own spec fields); listed here for the lookup's messages
_BUILTIN: dict[str, str] = {
    "ollama": "fdbuild.providers.ollama:OllamaProvider",
    "llamacpp": "fdbuild.providers.llamacpp:LlamaCppProvider",
    "openai": "fdbuild.providers.openai:OpenAIProvider",
}

KIND = Kind("provider", Provider, _BUILTIN, needs_version=False)


def get_provider_class(name: str, base_dir: Path | None = None) -> type[Provider]:
    """The provider class ``name`` names; ``PluginError`` when none can be loaded."""
    cls: type[Provider] = resolve(KIND, name, base_dir)
    return cls


def make_provider(spec: Any, base_dir: Path | None = None) -> Provider:
    """A provider for one teacher spec (``fdbuild.spec.model`` teacher models);
    ``base_dir`` (the target file's folder) anchors a plugin's ``./file.py:Name``."""
    if spec.provider not in _BUILTIN:
        return _plugin_provider(spec, base_dir)
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

        # one server: a ``hosts:`` teacher is built host by host (execute/teachers.py)
        assert spec.base_url is not None, "an openai teacher of one server has a base_url"
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


def _plugin_provider(spec: Any, base_dir: Path | None) -> Provider:
    """``Name(model=..., timeout_s=..., **options)``; the graph resolved the class at load,
    so a failure here is the constructor's (options it does not take)."""
    try:
        cls: Any = get_provider_class(spec.provider, base_dir)
    except PluginError as exc:
        raise ProviderError(exc.message) from None
    try:
        return cls(model=spec.model, timeout_s=spec.timeout_s, **spec.options)
    except Exception as exc:  # noqa: BLE001 - a plugin's constructor can raise anything
        raise ProviderError(
            f"provider '{spec.provider}' refused its options: {type(exc).__name__}: {exc}"
        ) from None
