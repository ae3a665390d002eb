"""eventmgmt: event management for Triton on Kubernetes (serve, replay, incidents, maintenance,
retention, report). `eventmgmt COMMAND --help` tells more."""

# NOTE: each module in COMMAND_MODULES adds its subcommands with `register`.

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = [
    "eventmgmt.runtime.commands",
    "eventmgmt.archive.commands",
    "eventmgmt.operator.commands",
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="eventmgmt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"eventmgmt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
