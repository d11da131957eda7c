"""Turning exceptions into one-line CLI errors."""
from __future__ import annotations

from typing import NoReturn

import click

from tad.errors import TadInputError

__all__ = ["EXIT_PARTIAL", "TadInputError", "fail"]

#: Exit status of a command that wrote the inputs that worked and listed the ones that
#: failed (0: every input worked; 1: an error, nothing written).
EXIT_PARTIAL = 3


def fail(exc: Exception) -> NoReturn:
    """Exit with ``exc`` as a one-line error (no traceback)."""
    text = str(exc).strip().splitlines()
    raise click.ClickException(text[0] if text else type(exc).__name__)
