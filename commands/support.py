"""What every command shares: the error boundary and JSON output. Light imports only."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a domain error into one line on stderr and exit code 1."""
    from adpulse.errors import AdpulseError

    try:
        yield
    except AdpulseError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
