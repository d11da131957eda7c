"""Turning exceptions into one-line CLI errors."""
from __future__ import annotations

from typing import NoReturn

import click

from tad.errors import TadInputError

__all__ = ["TadInputError", "fail"]


def fail(exc: Exception) -> NoReturn:
    """Exit with ``exc`` as a one-line error (no traceback)."""
    text = str(exc).strip().splitlines()
    raise click.ClickException(text[0] if text else type(exc).__name__)
