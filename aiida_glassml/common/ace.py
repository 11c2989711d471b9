"""Pure helpers for pacemaker ACE potential files (B-basis ``.yaml``, ``.yace``, active set ``.asi``).

No AiiDA imports: the data node and the MD renderers both call these.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import typing as t

import numpy as np
import yaml

try:  # the C loader parses a 250-function potential about 10x faster
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


class AcePotentialError(ValueError):
    """An ACE potential file is missing, malformed or inconsistent."""


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def parse_bbasis_yaml(content: bytes | str) -> dict:
    """Read the facts we store from a pacemaker B-basis YAML: elements (file order), cutoff, functions per element,
    embedding and reference energies. Raises :class:`AcePotentialError` when it is not a pacemaker potential."""
    try:
        data = yaml.load(content, Loader=_Loader)
    except yaml.YAMLError as exc:
        reason = ' '.join(str(exc).split())  # one line
        raise AcePotentialError(f'not valid YAML, so not a pacemaker potential: {reason}') from exc
    if not isinstance(data, dict) or not isinstance(data.get('species'), list):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise AcePotentialError(
            'not a pacemaker B-basis potential: expected top-level keys `global` and `species` (as written by '
            f'pacemaker to output_potential.yaml), found {found}. Give the fitted .yaml, not the pacemaker input.yaml.'
        )
    elements, functions, cutoff, embedding = [], {}, 0.0, {}
    for block in data['species']:
        if not isinstance(block, dict) or 'speciesblock' not in block:
            raise AcePotentialError('malformed pacemaker potential: a `species` entry has no `speciesblock`.')
        names = str(block['speciesblock']).split()
        if len(names) == 1:
            elements.append(names[0])
            embedding = embedding or {
                'npot': block.get('npoti'), 'ndensity': block.get('ndensityi'), 'fs_parameters': block.get('parameters')
            }  # fmt: skip
        functions[names[0]] = functions.get(names[0], 0) + len(block.get('nbody') or [])
        if 'rcutij' in block:
            cutoff = max(cutoff, float(block['rcutij']))
    if not elements:
        raise AcePotentialError('malformed pacemaker potential: no single-element species block, so no elements.')
    from ase.data import atomic_numbers

    unknown = [e for e in elements if e not in atomic_numbers]
    if unknown:
        raise AcePotentialError(f'the potential names unknown element(s) {unknown}.')
    reference = (data.get('metadata') or {}).get('reference_energy')
    if isinstance(reference, str):
        try:
            reference = json.loads(reference)
        except json.JSONDecodeError:
            reference = None
    return {
        'elements': elements,
        'cutoff': cutoff,
        'functions_per_element': {e: functions.get(e, 0) for e in elements},
        'embedding': embedding,
        'reference_energy': reference if isinstance(reference, dict) else None,
    }


def read_asi_elements(content: bytes) -> list[str]:
    """Element names stored as keys of a pacemaker active-set (``.asi``, numpy npz) file."""
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            return sorted(data.keys())
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise AcePotentialError(f'the .asi file is not a pacemaker active set (numpy npz): {exc}') from exc


def check_asi_matches(asi_elements: t.Sequence[str], yaml_elements: t.Sequence[str]) -> None:
    if sorted(asi_elements) != sorted(yaml_elements):
        raise AcePotentialError(
            f'the .asi active set is for elements {sorted(asi_elements)} but the .yaml potential has '
            f'{sorted(yaml_elements)}; rebuild it with `pace_activeset -d DATA potential.yaml`.'
        )


def read_yace_elements(content: bytes) -> list[str]:
    """Element names of a ``.yace`` (its first mapping key is ``elements: [..]``)."""
    for line in content[:4000].decode('utf-8', errors='replace').splitlines():
        if line.startswith('elements:'):
            return [e.strip() for e in line.split(':', 1)[1].strip().strip('[]').split(',') if e.strip()]
    raise AcePotentialError('the .yace file has no `elements:` line; regenerate it with `pace_yaml2yace potential.yaml`.')


def check_yace_matches(yace_elements: t.Sequence[str], yaml_elements: t.Sequence[str]) -> None:
    if list(yace_elements) != list(yaml_elements):
        raise AcePotentialError(
            f'the .yace is for elements {list(yace_elements)} but the .yaml has {list(yaml_elements)}; they are '
            'different potentials. Regenerate the .yace with `pace_yaml2yace potential.yaml` or omit it.'
        )


def yaml_to_yace(yaml_path: pathlib.Path, yace_path: pathlib.Path, executable: str = 'pace_yaml2yace') -> None:
    """Convert with pacemaker's own ``pace_yaml2yace`` (called, never re-implemented; in a subprocess, so a C++ abort on
    a malformed file cannot take the caller, e.g. a daemon worker, down with it)."""
    # next to the interpreter too: a daemon started without the virtual environment's bin/ on PATH
    exe = shutil.which(executable) or shutil.which(executable, path=str(pathlib.Path(sys.executable).parent))
    if exe is None:
        raise AcePotentialError(f'`{executable}` not found on PATH; install python-ace==0.4.0rc1 to make a .yace.')
    proc = subprocess.run([exe, str(yaml_path), '-o', str(yace_path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not yace_path.exists():
        raise AcePotentialError(f'pace_yaml2yace failed ({proc.returncode}): {proc.stderr.strip()[-500:]}')


@functools.lru_cache(maxsize=8)  # tests and imports see the same few potentials again and again
def yace_from_yaml(yaml_bytes: bytes) -> bytes:
    """The ``.yace`` that ``pace_yaml2yace`` makes from a B-basis ``.yaml``."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = pathlib.Path(tmp, 'potential.yaml'), pathlib.Path(tmp, 'potential.yace')
        src.write_bytes(yaml_bytes)
        yaml_to_yace(src, dst)
        return dst.read_bytes()


class _YaceLoader(_Loader):
    """A .yace keys its bonds by flow sequences (``[0, 1]: {...}``), which plain YAML loaders cannot hash."""


def _construct_yace_mapping(loader, node):
    loader.flatten_mapping(node)
    pairs = [(loader.construct_object(k, deep=True), loader.construct_object(v, deep=True)) for k, v in node.value]
    return {tuple(k) if isinstance(k, list) else k: v for k, v in pairs}


_YaceLoader.add_constructor('tag:yaml.org,2002:map', _construct_yace_mapping)


def parse_yace(content: bytes) -> dict:
    try:
        data = yaml.load(content, Loader=_YaceLoader)
    except yaml.YAMLError as exc:
        raise AcePotentialError(f'the .yace is not valid YAML: {" ".join(str(exc).split())}') from exc
    if not isinstance(data, dict) or not {'elements', 'bonds', 'functions'} <= set(data):
        raise AcePotentialError('the .yace is not a pacemaker C-tilde potential (no elements, bonds and functions); '
                                'regenerate it with `pace_yaml2yace potential.yaml`.')  # fmt: skip
    return data


_VERIFIED: set[tuple[str, str]] = set()


def check_yace_is_yaml(yace_bytes: bytes, yaml_bytes: bytes) -> None:
    """Raises AcePotentialError unless ``yace_bytes`` is the potential of ``yaml_bytes``: every cutoff, radial basis,
    embedding and C-tilde coefficient equal to those of the .yace that ``pace_yaml2yace`` makes from the .yaml (to
    1e-9 relative: conversions by different builds differ in the last digit). Comparing element lists alone lets a
    .yaml edited to another cutoff pass with the old .yace, and LAMMPS and pyace would then run different potentials."""
    key = (sha256_bytes(yace_bytes), sha256_bytes(yaml_bytes))
    if key in _VERIFIED:
        return
    given, made = parse_yace(yace_bytes), parse_yace(yace_from_yaml(yaml_bytes))
    difference = _first_difference(given, made, [], list(made.get('elements') or []))
    if difference is not None:
        where, a, b = difference
        raise AcePotentialError(
            f'the .yace is not the potential of the .yaml: {where} is {_short(a)} in the .yace but {_short(b)} in the '
            '.yaml; give no .yace to have it made from the .yaml, or remake it with `pace_yaml2yace potential.yaml`.'
        )
    _VERIFIED.add(key)


def _first_difference(a, b, path: list[str], elements: list[str]):
    """(where, value in a, value in b) of the first difference between two parsed .yace files, or None."""
    where = ''.join(path) or 'the file'
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f'the set of entries of {where}', sorted(map(str, a)), sorted(map(str, b))
        for key in a:
            step = _yace_key(key, path, elements)
            found = _first_difference(a[key], b[key], [*path, step], elements)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f'the length of {where}', len(a), len(b)
        if a and all(_number(x) for x in a) and all(_number(x) for x in b):
            close = np.isclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, atol=1e-14)
            if close.all():
                return None
            index = int(np.argmin(close))
            return f'{where}[{index}]', a[index], b[index]
        for index, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, [*path, f'[{index}]'], elements)
            if found is not None:
                return found
        return None
    if _number(a) and _number(b):
        return None if np.isclose(float(a), float(b), rtol=1e-9, atol=1e-14) else (where, a, b)
    return None if a == b else (where, a, b)


def _yace_key(key, path: list[str], elements: list[str]) -> str:
    """``bonds[Fe-Na].rcut`` rather than ``bonds[(0, 1)].rcut``: element indices by name where the file uses them."""
    def name(i):
        return elements[i] if isinstance(i, int) and 0 <= i < len(elements) else str(i)

    if len(path) == 1 and path[0] in ('bonds', 'embeddings', 'functions', 'E0'):
        return f'[{"-".join(name(i) for i in key)}]' if isinstance(key, tuple) else f'[{name(key)}]'
    return f'.{key}' if path else str(key)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def lammps_pair_lines(
    elements_by_type: t.Sequence[str],
    *,
    extrapolation: bool = False,
    yace: str = 'potential.yace',
    yaml_name: str = 'potential.yaml',
    asi: str = 'potential.asi',
) -> list[str]:
    """``pair_style``/``pair_coeff`` lines. ``elements_by_type`` maps LAMMPS types 1..n to element symbols."""
    species = ' '.join(elements_by_type)
    if extrapolation:
        return ['pair_style pace/extrapolation', f'pair_coeff * * {yaml_name} {asi} {species}']
    return ['pair_style pace', f'pair_coeff * * {yace} {species}']
