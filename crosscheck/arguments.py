"""What the three commands (check, grade, gradescope-bundle) share on their command line:
usage errors reported in one line (exit 2), and the --memory-limit size type."""

from __future__ import annotations

import argparse
from typing import NoReturn

from crosscheck.isolation import parse_size


class UsageError(Exception):
    """A mistake on the command line or in --layer: reported in one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors that point at the command's --help."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def size(text: str) -> int:
    """argparse's form of isolation.parse_size: '4G' / '512M' -> bytes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
