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


def split_elements(text: str, option: str, example: str = 'P,Fe') -> list[str]:
    """``'P,Fe'`` -> ``['P', 'Fe']``; a name that is not an element symbol (``Xx``, ``fe``, ``0``) fails."""
    from ase.data import chemical_symbols

    names = [n.strip() for n in text.split(',') if n.strip()]
    unknown = [n for n in names if n not in chemical_symbols[1:]]
    if unknown:
        fail(f'{option} {text!r}: not element symbols: {", ".join(unknown)} '
             f'(symbols are case sensitive, e.g. {example}).')  # fmt: skip
    return names


def check_output_file(path) -> None:
    """Fail unless ``path`` can be written: not a folder, in an existing writable folder. Call it before storing."""
    import os
    import pathlib

    path = pathlib.Path(path)
    folder = path.parent
    if path.is_dir():
        fail(f'output {path} is a folder; give a file name, e.g. {path / "structures.extxyz"}.')
    if not folder.is_dir():
        fail(f'output folder {folder} does not exist or is not a folder; create it first (mkdir -p {folder}).')
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f'output {path} is not writable; choose another place or fix its permissions.')
