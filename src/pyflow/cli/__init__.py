"""The `pyflow` command line: serve, run, import, export, validate, nodespec, runs."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from ..model.errors import PyflowError
from .commands import COMMANDS, add_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyflow", description="Compose Python functions into flows and run "
                                                                 "them in a sandbox.")
    parser.add_argument("--version", action="version", version=f"pyflow {__import__('pyflow').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except PyflowError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for item in exc.details:
            print(f"  {item.get('path') or '/'}: {item.get('message')}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # a database damaged in a way opening it did not show
        print(f"error: the database cannot be used: {exc}; `pyflow check` reports what is wrong", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

