"""Pure helpers for pacemaker ACE potential files (B-basis ``.yaml``, ``.yace``, active set ``.asi``).

No AiiDA imports: the data node and the MD renderers both call these.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import shutil
import subprocess
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
        raise AcePotentialError(f'not valid YAML, so not a pacemaker potential: {exc}') from exc
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
    """Convert with pacemaker's own ``pace_yaml2yace`` (called, never re-implemented)."""
    exe = shutil.which(executable)
    if exe is None:
        raise AcePotentialError(f'`{executable}` not found on PATH; install python-ace==0.4.0rc1 to make a .yace.')
    proc = subprocess.run([exe, str(yaml_path), '-o', str(yace_path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not yace_path.exists():
        raise AcePotentialError(f'pace_yaml2yace failed ({proc.returncode}): {proc.stderr.strip()[-500:]}')


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
