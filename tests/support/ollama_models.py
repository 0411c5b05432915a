"""The models a fake Ollama server has installed: tag, digest and the details ``/api/show`` reports.

Tags are kept in Ollama's short display form (``normalize_model``), so ``qwen`` and
``qwen:latest`` name one model, as they do for a real server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

DEFAULT_MODEL = "qwen2.5-coder:7b"
DEFAULT_DIGEST = "dae161e27b0e90dd1856c8bb3209201fd6736d8eb66298e75ed87571486f4364"

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Model:
    tag: str
    digest: str
    thinking: bool
    family: str
    parameter_size: str
    quantization_level: str
    size: int
    modified_at: datetime


def normalize_model(name: str) -> str:
    """Ollama's short display name: ``qwen`` -> ``qwen:latest``, default registry dropped."""
    name = name.strip()
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def model_family(name: str) -> str:
    """A plausible GGUF family from a tag's name: ``qwen2.5-coder`` -> ``qwen``."""
    letters = re.match(r"[a-z]*", name.rsplit("/", 1)[-1].lower())
    return (letters.group() if letters else "") or "llama"


def check_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise ValueError(f"digest must be 64 lowercase hex characters, got {digest!r}")
    return digest
