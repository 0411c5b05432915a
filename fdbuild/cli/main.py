"""``fdbuild`` entry point: one argparse parser, one module per command group.

Exit codes (SPEC 4): 0 built; 2 bad target file or arguments; 3 built but some rows
failed (recorded, retried next time); 4 a write failed (disk full); 5 a teacher's
identity changed during the build; 1 anything else; 130 interrupted (Ctrl-C); 143
terminated (SIGTERM, handled like Ctrl-C).
Heavy modules are imported inside the command handlers, so ``fdbuild --version`` and
``--help`` start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fdbuild import __version__


def make_parser() -> argparse.ArgumentParser:
    from fdbuild.cli import (
        build_cmd,
        diff_cmd,
        doctor_cmd,
        gc_cmd,
        import_cmd,
        report_cmd,
        runs_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="fdbuild",
        description="Declarative, content-addressed builds of LLM distillation datasets.",
        epilog="Run `fdbuild COMMAND --help` for a command's options. Docs: docs/cli.md",
    )
    parser.add_argument("--version", action="version", version=f"fdbuild {__version__}")
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="project root (default: the nearest folder "
        "upwards holding fdbuild.lock or .fdbuild/, else the current folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (build_cmd, diff_cmd, runs_cmd, report_cmd, gc_cmd, doctor_cmd, import_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    args.argv = args_list
    from fdbuild.errors import FdbuildError, Terminated
    from fdbuild.execute.signals import sigterm_handler

    try:
        with sigterm_handler():
            return int(args.func(args) or 0)
    except FdbuildError as exc:
        print(f"fdbuild: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print(
            "fdbuild: terminated (SIGTERM); every finished result is kept in the cache. "
            "Run the same command again to continue.",
            file=sys.stderr,
        )
        return 143
    except KeyboardInterrupt:
        print(
            "fdbuild: interrupted; every finished result is kept in the cache. "
            "Run the same command again to continue.",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
