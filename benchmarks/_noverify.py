"""The ``fdbuild`` CLI with artifact verification switched off, for ``bench_noop.py`` only.

A memo hit then checks only that its artifact exists, as before issue 9 (no sidecar read,
no size check), and a read hashes nothing: the difference to the real CLI in the same
rounds is what verification adds to a no-op. Exits 4 when the checkout has no
verification to switch off (an older fdbuild), so the benchmark can say so.

    python benchmarks/_noverify.py build bench.yaml --json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def switch_off() -> None:
    try:
        from fdbuild.store import objects, verify
    except ImportError as exc:
        raise SystemExit(_missing(f"no fdbuild.store.verify ({exc})")) from None
    if not hasattr(objects, "looks_intact") or not hasattr(objects.ArtifactStore, "verify"):
        raise SystemExit(_missing("fdbuild.store.objects has no looks_intact/verify"))

    def exists(path: Path) -> bool:
        return path.exists()

    def unverified(self: Any, digest: str, *, adopt: bool = True) -> Any:
        path = self.path(digest)
        return verify.Verdict(path.exists(), "" if path.exists() else "missing")

    objects.looks_intact = exists  # what ArtifactStore.looks_intact calls
    objects.ArtifactStore.verify = unverified  # type: ignore[method-assign]


def _missing(why: str) -> int:
    print(f"_noverify.py: nothing to switch off: {why}", file=sys.stderr)
    return 4


if __name__ == "__main__":
    switch_off()
    from fdbuild.cli.main import main

    sys.exit(main())
