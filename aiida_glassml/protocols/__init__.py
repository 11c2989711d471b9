"""YAML protocols (``fast``/``balanced``/``stringent``) for the work chains, in the aiida-quantumespresso style.

Each protocol file ``<name>.yaml`` beside this module has the layout::

    default_protocol: balanced
    default_inputs: {...}          # shared by every protocol
    protocols:
      fast: {description: ..., ...}
      balanced: {description: ..., ...}
      stringent: {description: ..., ...}

Overrides are merged recursively and, unlike a plain dict merge, a key that the protocol does not define is an error:
a misspelled override must never be silently ignored.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import typing as t

import yaml

PROTOCOL_DIR = pathlib.Path(__file__).parent


class ProtocolError(ValueError):
    """An unknown protocol or override key."""


def recursive_merge(base: dict, update: dict, strict: bool = False, path: str = '', defaults=None) -> dict:
    """Merge ``update`` into a copy of ``base``. With ``strict``, keys missing from ``base`` raise ProtocolError,
    except below keys whose value in ``base`` is an empty dict or None, or whose value in ``defaults`` (the file's
    ``default_inputs`` at the same place) is an empty dict: free-form namespaces stay free-form when a protocol fills
    some of their keys."""
    merged = copy.deepcopy(base)
    free = isinstance(defaults, dict) and not defaults
    for key, value in update.items():
        where = f'{path}.{key}' if path else str(key)
        if strict and not free and key not in merged:
            known = ', '.join(sorted(map(str, merged))) or 'none'
            raise ProtocolError(f'unknown override key `{where}`; known keys here: {known}.')
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and merged[key]:
            below = defaults.get(key) if isinstance(defaults, dict) else None
            merged[key] = recursive_merge(merged[key], value, strict=strict and not free, path=where, defaults=below)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@functools.lru_cache(maxsize=None)
def _load(path: str) -> dict:
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def load_protocol_file(name: str) -> dict:
    path = PROTOCOL_DIR / f'{name}.yaml'
    if not path.exists():
        raise ProtocolError(f'no protocol file `{name}.yaml` in {PROTOCOL_DIR}.')
    return copy.deepcopy(_load(str(path)))


class ProtocolMixin:
    """Mixin for processes with protocols. Subclasses set ``_protocol_file`` (file stem beside this module)."""

    _protocol_file: t.ClassVar[str]

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return PROTOCOL_DIR / f'{cls._protocol_file}.yaml'

    @classmethod
    def get_default_protocol(cls) -> str:
        return load_protocol_file(cls._protocol_file)['default_protocol']

    @classmethod
    def get_available_protocols(cls) -> dict:
        data = load_protocol_file(cls._protocol_file)
        return {name: {'description': values['description']} for name, values in data['protocols'].items()}

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides: dict | pathlib.Path | None = None) -> dict:
        """Protocol inputs merged over the defaults, then the overrides (strictly: unknown keys raise)."""
        data = load_protocol_file(cls._protocol_file)
        protocol = protocol or data['default_protocol']
        if protocol not in data['protocols']:
            raise ProtocolError(
                f'unknown protocol `{protocol}`; choose one of {", ".join(data["protocols"])}.'
            )
        inputs = recursive_merge(data.get('default_inputs', {}), data['protocols'][protocol])
        inputs.pop('description', None)
        if isinstance(overrides, pathlib.Path):
            overrides = yaml.safe_load(overrides.read_text())
        if overrides:
            inputs = recursive_merge(inputs, overrides, strict=True, defaults=data.get('default_inputs', {}))
        return inputs
