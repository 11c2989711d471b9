"""VASP labelling: INCAR, KPOINTS and POTCAR mapping for aiida-vasp's ``VaspWorkChain``, and frames from its outputs.

Presets encode the studies we serve:

- ``nafepo4``: PBE PAW, ENCUT 520 eV, Γ only, Dudarev U(Fe) = 5.1 eV, spin-polarised with MAGMOM from a mapping,
  EDIFF = 1e-5 eV × number of atoms (Materials-Project-compatible POTCARs and MAGMOMs);
- ``na3v2po43``: as above with U(V) = 4.2 eV, ENCUT 400 eV and a ferromagnetic start.
"""

from __future__ import annotations

import copy
import typing as t

import numpy as np

from aiida_glassml.common.units import KBAR_TO_EV_PER_A3

from .errors import LabelingInputError

# Materials Project POTCAR choices (PBE_54) for the elements of our glasses.
MP_POTCARS = {
    'Li': 'Li_sv', 'Na': 'Na_pv', 'K': 'K_sv', 'Mg': 'Mg_pv', 'Ca': 'Ca_sv', 'Fe': 'Fe_pv', 'V': 'V_pv',
    'Mn': 'Mn_pv', 'Co': 'Co', 'Ni': 'Ni_pv', 'Ti': 'Ti_pv', 'Cr': 'Cr_pv', 'P': 'P', 'S': 'S', 'Si': 'Si', 'O': 'O',
    'B': 'B', 'Al': 'Al', 'Ge': 'Ge_d', 'F': 'F', 'Cl': 'Cl',
}  # fmt: skip
PRESETS = {
    'nafepo4': {'encut': 520, 'hubbard_u': {'Fe': 5.1}, 'magmom': {'Fe': 5.0, 'default': 0.6}},
    'na3v2po43': {'encut': 400, 'hubbard_u': {'V': 4.2}, 'magmom': {'V': 2.0, 'default': 0.6}},  # ferromagnetic
}
# d elements get LDAUL = 2 and LMAXMIX = 4
D_ELEMENTS = {'Ti', 'V', 'Cr', 'Mn', 'Fe', 'Co', 'Ni', 'Cu', 'Zn', 'Mo', 'W'}


def resolve_preset(settings: dict) -> dict:
    """The ``vasp`` settings block with its preset's ENCUT, U values and MAGMOMs filled in where not given."""
    settings = copy.deepcopy(settings)
    preset = settings.get('preset')
    if preset is not None:
        if preset not in PRESETS:
            raise LabelingInputError(f'unknown VASP preset `{preset}`; choose one of {", ".join(PRESETS)} or null.')
        for key, value in PRESETS[preset].items():
            if settings.get(key) is None:
                settings[key] = copy.deepcopy(value)
    return settings


def species_order(symbols: t.Sequence[str]) -> list[str]:
    """Species in order of first appearance: the order of POSCAR, POTCAR and the per-species INCAR tags."""
    return list(dict.fromkeys(symbols))


def build_incar(symbols: t.Sequence[str], settings: dict, mode: str, md: dict | None = None) -> dict:
    """INCAR tags (lower-case keys, as aiida-vasp takes them) for one structure."""
    if mode not in ('aimd', 'single_point'):
        raise LabelingInputError(f'unknown labelling mode `{mode}`; use `aimd` or `single_point`.')
    settings = resolve_preset(settings)
    species = species_order(symbols)
    magmom_map = settings.get('magmom') or {}
    incar: dict[str, t.Any] = {
        'gga': 'PE', 'prec': settings.get('prec', 'Accurate'), 'encut': settings['encut'],
        'ediff': float(f"{float(settings.get('ediff_per_atom', 1e-5)) * len(symbols):.6g}"), 'ismear': 0,
        'sigma': settings.get('sigma', 0.05), 'algo': settings.get('algo', 'Fast'), 'nelm': settings.get('nelm', 100),
        'lreal': settings.get('lreal', 'Auto'), 'lwave': False, 'lcharg': False, 'isym': 0,
    }  # fmt: skip
    if settings.get('ispin', 2) == 2:
        default = float(magmom_map.get('default', 0.6))
        incar.update({'ispin': 2, 'lorbit': 11, 'magmom': [float(magmom_map.get(s, default)) for s in symbols]})
    hubbard = {s: u for s, u in (settings.get('hubbard_u') or {}).items() if s in species}
    if hubbard:
        incar.update({
            'ldau': True, 'ldautype': 2, 'ldauprint': 1,
            'ldaul': [2 if s in hubbard and s in D_ELEMENTS else (3 if s in hubbard else -1) for s in species],
            'ldauu': [float(hubbard.get(s, 0.0)) for s in species], 'ldauj': [0.0] * len(species),
            'lmaxmix': 6 if any(s not in D_ELEMENTS for s in hubbard) else 4,
        })  # fmt: skip
    if mode == 'single_point':
        incar.update({'ibrion': -1, 'nsw': 0})
    else:
        incar.update({
            'ibrion': 0, 'mdalgo': 2, 'smass': 0, 'potim': float(md['timestep']), 'nsw': int(md['steps']) + 1,
            'tebeg': float(md['temperature']), 'teend': float(md['temperature']), 'nblock': 1,
        })  # fmt: skip
    return incar


def potential_mapping(elements: t.Iterable[str], settings: dict) -> dict[str, str]:
    """Element -> POTCAR name: the Materials Project choice unless ``settings['potcars']`` says otherwise."""
    chosen = {**MP_POTCARS, **(settings.get('potcars') or {})}
    missing = sorted(e for e in set(elements) if e not in chosen)
    if missing:
        raise LabelingInputError(
            f'no POTCAR choice for {", ".join(missing)}; add it to `vasp.potcars` (element -> POTCAR name, e.g. '
            f'{{"{missing[0]}": "{missing[0]}"}}).'
        )
    return {e: chosen[e] for e in sorted(set(elements))}


def check_potcar_family(
    elements: t.Iterable[str], family: str | None, settings: dict, available: t.Iterable[str] | None
) -> None:  # fmt: skip
    """Raise LabelingInputError if no family is named, it is not uploaded (``available`` None) or lacks a POTCAR."""
    if not family:
        raise LabelingInputError(
            'engine `vasp` needs `potential_family`: the name of a POTCAR family uploaded with '
            '`aiida-vasp potcar uploadfamily`.'
        )
    if available is None:
        raise LabelingInputError(
            f'POTCAR family `{family}` is not uploaded; upload it with `aiida-vasp potcar uploadfamily --name {family}`.'
        )
    mapping = potential_mapping(elements, settings)
    missing = sorted(f'{e} ({name})' for e, name in mapping.items() if name not in set(available))
    if missing:
        raise LabelingInputError(
            f'POTCAR family `{family}` has no POTCAR for {", ".join(missing)}; upload it to the family or change '
            '`vasp.potcars`.'
        )


def render_incar(incar: dict) -> str:
    """INCAR text, tags sorted, lists written VASP-style (``2*0.6`` for repeats)."""

    def value(item):
        if isinstance(item, bool):
            return '.TRUE.' if item else '.FALSE.'
        if isinstance(item, (list, tuple)):
            groups, out = [], []
            for entry in item:
                if groups and groups[-1][0] == entry:
                    groups[-1][1] += 1
                else:
                    groups.append([entry, 1])
            for entry, count in groups:
                out.append(f'{count}*{value(entry)}' if count > 1 else value(entry))
            return ' '.join(out)
        if isinstance(item, float):
            return f'{item:.6g}'
        return str(item)

    return ''.join(f'{key.upper()} = {value(incar[key])}\n' for key in sorted(incar))


def gamma_kpoints_text() -> str:
    return 'Gamma point only\n0\nGamma\n1 1 1\n0 0 0\n'


def frames_from_vasp_arrays(
    symbols: t.Sequence[str], positions: np.ndarray, cells: np.ndarray, energies: np.ndarray, forces: np.ndarray,
    stress: np.ndarray | None = None, magmoms: np.ndarray | None = None, mode: str = 'aimd', sample_every: int = 1,
) -> list[dict]:  # fmt: skip
    """Frames from per-step arrays (Å, eV, eV/Å; stress in kbar in VASP's sign, i.e. positive = compressive)."""
    count = min(len(energies), len(forces), len(positions))
    frames = []
    for index in range(count):
        if mode == 'aimd' and index % sample_every:
            continue
        frames.append({
            'symbols': list(symbols), 'positions': np.asarray(positions[index]), 'cell': np.asarray(cells[index]),
            'energy': float(energies[index]), 'forces': np.asarray(forces[index]),
            'stress': -np.asarray(stress[index]) * KBAR_TO_EV_PER_A3 if stress is not None and index < len(stress) else None,
            'magmoms': np.asarray(magmoms[index]) if magmoms is not None and index < len(magmoms) else None,
            'metadata': {'step': index},
        })  # fmt: skip
    return frames


def site_moments_from_misc(misc: dict, n_atoms: int) -> np.ndarray | None:
    """Per-site total moments (μB) of the last ionic step from aiida-vasp's ``misc['site_magnetization']`` (OUTCAR's
    ``magnetization (x)`` table, written with ISPIN 2 and LORBIT 11); None when absent."""
    sites = ((misc.get('site_magnetization') or {}).get('sphere') or {}).get('x', {}).get('site_moment') or {}
    if not sites:
        return None
    moments = []
    for index in range(1, n_atoms + 1):
        entry = sites.get(str(index), sites.get(index))
        if entry is None:
            return None
        moments.append(float(entry['tot']))
    return np.array(moments)


def parse_outcar_magnetizations(outcar: str) -> list[np.ndarray]:
    """Per-site total moments (μB) of every ionic step, in order: the ``tot`` column of each ``magnetization (x)``
    table of OUTCAR (written after each ionic step with ISPIN 2 and LORBIT 11; ``x`` is the collinear moment).
    A table cut off before its last site (a killed run) is dropped."""
    lines = outcar.splitlines()
    result = []
    for index, line in enumerate(lines):
        if line.strip() != 'magnetization (x)':
            continue
        moments, header_seen, complete = [], False, False
        for row in lines[index + 1 :]:
            parts = row.split()
            if not header_seen:
                header_seen = bool(parts) and parts[0] == '#'
                continue
            if parts and parts[0].isdigit():
                moments.append(float(parts[-1]))
                continue
            if not moments and parts and set(parts[0]) == {'-'}:
                continue  # the dashes under the header
            complete = bool(moments)  # dashes, ``tot`` or a blank line end the table; the end of the file does not
            break
        if moments and complete:
            result.append(np.array(moments))
    return result
