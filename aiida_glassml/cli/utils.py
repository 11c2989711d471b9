"""Small helpers shared by the CLI modules."""

from __future__ import annotations

import json
import sys

import click


def echo_json(payload) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=_default))


def _default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def fail(message: str) -> None:
    """Print a one-line error naming the problem and exit non-zero (no traceback for user errors)."""
    click.echo(f'Error: {message}', err=True)
    sys.exit(1)
