"""VASP labelling: INCAR, KPOINTS and POTCAR mapping for aiida-vasp's ``VaspWorkChain``, and frames from its outputs.

Presets encode the studies we serve (see docs/labeling.md, "VASP presets and energies"):

- ``nafepo4`` (the NaFePO4 default): the published NaFePO4 study's settings (R. Christensen et al., J. Mater. Chem. A
  13 (2025) 24619; its workflow is vitrum's ``batch_active/flows.py`` on atomate2's ``BaseVaspSet``): PBE PAW,
  ENCUT 520 eV, PREC Normal, Γ only, non-spin-polarised (ISPIN 1), Dudarev U(Fe) = 5.3 eV, LASPH, the ``Fe`` POTCAR
  (not ``Fe_pv``), ISMEAR 0 with SIGMA 0.05 eV, EDIFF = 1e-5 eV × number of atoms. Labels made with it are
  energy-compatible with the study's published test set and potential;
- ``nafepo4_spin``: the same with spin polarisation (ISPIN 2, Fe 5 μB, others 0.6 μB): not energy-compatible with
  the published data;
- ``na3v2po43``: ENCUT 400 eV, U(V) = 4.2 eV, PREC Accurate, ferromagnetic start (V 2 μB).

Atom order: aiida-vasp writes POSCAR and POTCAR per run of consecutive equal kinds, so the per-species INCAR tags are
built per run (:func:`poscar_species`); ``LabelWorkChain`` groups the kinds first (:func:`species_sort_order`) and maps
per-atom results back to the caller's order (``frames_from_vasp_arrays(atom_order=...)``).

The energy stored is VASP's ``energy(sigma->0)`` (aiida-vasp ``energy_extrapolated``), what ASE's
``get_potential_energy()`` returns for VASP and what the published NaFePO4 data hold (:data:`ENERGY_TYPE`).
"""

from __future__ import annotations

import copy
import itertools
import math
import re
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
# The NaFePO4 study (vitrum batch_active/flows.py: atomate2 StaticSetGenerator/MDSetGenerator, PBE_64 POTCARs, with
# ENCUT 520, ISPIN 1, PREC Normal, ISMEAR 0, SIGMA 0.05, LREAL Auto, EDIFF 1e-5 × N). From atomate2's BaseVaspSet:
# U(Fe) = 5.3 eV on oxides, LASPH, POTCAR ``Fe``. Everything that changes the total energy is pinned here.
# MAGMOM (used with ISPIN 2 only): Fe high spin, as atomate2's; `nafepo4` with `ispin: 2` is `nafepo4_spin`.
_NAFEPO4 = {'encut': 520, 'prec': 'Normal', 'ispin': 1, 'lasph': True, 'hubbard_u': {'Fe': 5.3},
            'potcars': {'Fe': 'Fe'}, 'magmom': {'Fe': 5.0, 'default': 0.6}}  # fmt: skip
PRESETS = {
    'nafepo4': _NAFEPO4,
    'nafepo4_spin': {**_NAFEPO4, 'ispin': 2},
    'na3v2po43': {'encut': 400, 'prec': 'Accurate', 'ispin': 2, 'lasph': False, 'hubbard_u': {'V': 4.2},
                  'magmom': {'V': 2.0, 'default': 0.6}},  # ferromagnetic
}  # fmt: skip
# Settings a preset fills when the protocol leaves them null, and their values without a preset.
PRESET_DEFAULTS = {'encut': None, 'prec': 'Accurate', 'ispin': 2, 'lasph': False, 'hubbard_u': {}, 'magmom': {},
                   'potcars': {}}  # fmt: skip
# d elements get LDAUL = 2 and LMAXMIX = 4
D_ELEMENTS = {'Ti', 'V', 'Cr', 'Mn', 'Fe', 'Co', 'Ni', 'Cu', 'Zn', 'Mo', 'W'}
#: aiida-vasp's name for the energy stored in frames: VASP's ``energy(sigma->0)``.
ENERGY_TYPE = 'energy_extrapolated'
# VASP's constants (constant.inc), so that SMASS reproduces VASP's own Nosé period.
_BOLKEV, _EVTOJ, _AMTOKG = 8.6173857e-5, 1.60217733e-19, 1.6605402e-27


def resolve_preset(settings: dict) -> dict:
    """The ``vasp`` settings block with its preset's values filled in where the block gives null (``potcars`` is
    merged per element, the block's choices winning); without a preset, :data:`PRESET_DEFAULTS`."""
    settings = copy.deepcopy(settings)
    preset = settings.get('preset')
    if preset is not None and preset not in PRESETS:
        raise LabelingInputError(f'unknown VASP preset `{preset}`; choose one of {", ".join(PRESETS)} or null.')
    values = {**PRESET_DEFAULTS, **(PRESETS[preset] if preset else {})}
    for key, value in values.items():
        if key == 'potcars':
            settings[key] = {**value, **(settings.get(key) or {})}
        elif settings.get(key) is None:
            settings[key] = copy.deepcopy(value)
    if settings.get('encut') is None:
        raise LabelingInputError('`vasp.encut` is null and no preset gives it; set `vasp.encut` (eV) or a preset.')
    return settings


def poscar_species(kinds: t.Sequence[str]) -> list[str]:
    """The species of POSCAR and POTCAR as aiida-vasp writes them: one per run of consecutive equal kinds (its
    ``PoscarParser`` keeps the site order; ``MultiPotcarIo.count_kinds`` groups consecutive kind names). Per-species
    INCAR tags (LDAUL, LDAUU, LDAUJ) need one entry per run, in this order."""
    return [kind for kind, _ in itertools.groupby(kinds)]


def species_sort_order(kinds: t.Sequence[str]) -> list[int]:
    """Atom indices that group equal kinds, kinds in order of first appearance, atoms of a kind in their original
    order (a stable sort): the grouped structure is ``[atoms[i] for i in order]``."""
    rank = {kind: index for index, kind in enumerate(dict.fromkeys(kinds))}
    return sorted(range(len(kinds)), key=lambda index: rank[kinds[index]])


def restore_atom_order(values: t.Any, order: t.Sequence[int] | None) -> t.Any:
    """Per-atom ``values`` (first axis: atoms) of a structure grouped with ``order`` back in the original order:
    ``restored[order[i]] = values[i]``. ``order`` None: unchanged."""
    if order is None or values is None:
        return values
    array = np.asarray(values)
    if len(array) != len(order):
        raise LabelingInputError(f'{len(array)} per-atom values for {len(order)} atoms: the VASP output does not '
                                 'belong to the structure it was read with.')  # fmt: skip
    restored = np.empty_like(array)
    restored[np.asarray(order, dtype=int)] = array
    return restored if isinstance(values, np.ndarray) else restored.tolist()


def nose_smass(period_fs: float, timestep_fs: float, temperature: float, n_atoms: int, cell_length: float) -> float:
    """VASP's SMASS for a Nosé thermostat whose temperature oscillates with period ``period_fs``.

    VASP (main.F) turns SMASS into the Nosé mass Q = SMASS · amu/eV · (1e-10 · a)² (eV s², ``a`` the length of the
    first cell vector in Å) and Q into the frequency ω = sqrt(2 k_B T N_f / Q), N_f = 3N − 3; SMASS = 0 is the mass
    for a period of 40 time steps. Solving ω = 2π / period for SMASS gives this value (``timestep_fs`` is only checked:
    the period must span at least two steps)."""
    if period_fs < 2 * timestep_fs:
        raise LabelingInputError(
            f'`aimd.thermostat_timecon` = {period_fs:g} fs is shorter than two time steps ({timestep_fs:g} fs each); '
            'the Nosé period must span many steps: use e.g. 40 time steps, or null for VASP\'s default (SMASS 0).'
        )
    n_free = 3 * n_atoms - 3
    factor = (period_fs * 1e-15 / (2 * math.pi * cell_length)) ** 2 * 2e20
    return factor * _BOLKEV * _EVTOJ / _AMTOKG * n_free * temperature


def nose_period_fs(smass: float, temperature: float, n_atoms: int, cell_length: float) -> float:
    """The period (fs) of the Nosé oscillation VASP reports for ``smass`` (its OUTCAR's "period in steps" × POTIM)."""
    mass = smass * (_AMTOKG / _EVTOJ) * (1e-10 * cell_length) ** 2
    omega = math.sqrt(2 * _BOLKEV * temperature * (3 * n_atoms - 3) / mass)
    return 2 * math.pi / omega * 1e15


def build_incar(symbols: t.Sequence[str], settings: dict, mode: str, md: dict | None = None,
                kinds: t.Sequence[str] | None = None, cell: t.Any = None) -> dict:  # fmt: skip
    """INCAR tags (lower-case keys, as aiida-vasp takes them) for one structure, its atoms in the order given.

    ``kinds``: the kind name of every atom (default: ``symbols``); per-species tags follow :func:`poscar_species`, U
    and MAGMOM look up the kind name first, then the element. ``cell`` (Å): needed for the Nosé mass of an AIMD run
    with ``md['thermostat_timecon']``."""
    if mode not in ('aimd', 'single_point'):
        raise LabelingInputError(f'unknown labelling mode `{mode}`; use `aimd` or `single_point`.')
    settings = resolve_preset(settings)
    kinds = list(kinds) if kinds is not None else list(symbols)
    if len(kinds) != len(symbols):
        raise LabelingInputError(f'{len(kinds)} kind names for {len(symbols)} atoms.')
    element = dict(zip(kinds, symbols))
    species = poscar_species(kinds)
    magmom_map = settings.get('magmom') or {}
    incar: dict[str, t.Any] = {
        'gga': 'PE', 'prec': settings['prec'], 'encut': settings['encut'],
        'ediff': float(f"{float(settings.get('ediff_per_atom', 1e-5)) * len(symbols):.6g}"), 'ismear': 0,
        'sigma': settings.get('sigma', 0.05), 'algo': settings.get('algo', 'Fast'), 'nelm': settings.get('nelm', 100),
        'lreal': settings.get('lreal', 'Auto'), 'lwave': False, 'lcharg': False, 'isym': 0,
        'ispin': int(settings['ispin']),
    }  # fmt: skip
    if settings['lasph']:
        incar['lasph'] = True
    if int(settings['ispin']) == 2:
        default = float(magmom_map.get('default', 0.6))
        incar.update({'lorbit': 11, 'magmom': [
            float(magmom_map.get(kind, magmom_map.get(symbol, default))) for kind, symbol in zip(kinds, symbols)
        ]})  # fmt: skip
    given_u = settings.get('hubbard_u') or {}
    hubbard = {kind: float(given_u.get(kind, given_u.get(element[kind], 0.0))) for kind in species}
    if any(hubbard.values()):
        u_elements = {element[kind] for kind, u in hubbard.items() if u}
        incar.update({
            'ldau': True, 'ldautype': 2, 'ldauprint': 1,
            'ldaul': [(2 if element[k] in D_ELEMENTS else 3) if hubbard[k] else -1 for k in species],
            'ldauu': [hubbard[k] for k in species], 'ldauj': [0.0] * len(species),
            'lmaxmix': 6 if u_elements - D_ELEMENTS else 4,
        })  # fmt: skip
    if mode == 'single_point':
        incar.update({'ibrion': -1, 'nsw': 0})
    else:
        timecon = md.get('thermostat_timecon')
        if timecon:
            if cell is None:
                raise LabelingInputError('the Nosé mass (SMASS) of an AIMD run needs the cell: pass `cell`.')
            smass = nose_smass(float(timecon), float(md['timestep']), float(md['temperature']), len(symbols),
                               float(np.linalg.norm(np.asarray(cell, dtype=float)[0])))  # fmt: skip
        else:
            smass = 0  # VASP's own choice: a period of 40 time steps
        incar.update({
            'ibrion': 0, 'mdalgo': 2, 'smass': float(f'{smass:.6g}') if smass else 0, 'potim': float(md['timestep']),
            'nsw': int(md['steps']) + 1, 'tebeg': float(md['temperature']), 'teend': float(md['temperature']),
            'nblock': 1, 'isif': 2,  # ISIF 2: the stress of every step (VASP's MD default, ISIF 0, computes none)
        })  # fmt: skip
    return incar


#: VASP's charge density (ρ·V on the FFT grid), written with LCHARG
CHGCAR_FILE = 'CHGCAR'


def potcar_zval(text: str) -> float:
    """The valence charge ``ZVAL`` of a POTCAR's header (``POMASS = ...; ZVAL = 7.000 mass and valenz``)."""
    found = re.search(r'ZVAL\s*=\s*([-+\d.Ee]+)', text)
    if found is None:
        raise LabelingInputError('the POTCAR has no ZVAL in its header; upload a complete POTCAR to the family.')
    return float(found.group(1))


def potential_mapping(elements: t.Iterable[str], settings: dict) -> dict[str, str]:
    """Element -> POTCAR name: ``settings['potcars']``, else the preset's choice, else the Materials Project one."""
    preset = PRESETS.get(settings.get('preset')) or {}
    chosen = {**MP_POTCARS, **(preset.get('potcars') or {}), **(settings.get('potcars') or {})}
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
    atom_order: t.Sequence[int] | None = None,
) -> list[dict]:  # fmt: skip
    """Frames from per-step arrays (Å, eV, eV/Å; stress in kbar in VASP's sign, i.e. positive = compressive).
    ``atom_order``: the :func:`species_sort_order` the structure was grouped with before VASP ran; symbols,
    positions, forces and moments are put back in the original atom order."""
    count = min(len(energies), len(forces), len(positions))
    symbols = restore_atom_order(list(symbols), atom_order)
    frames = []
    for index in range(count):
        if mode == 'aimd' and index % sample_every:
            continue
        moments = np.asarray(magmoms[index]) if magmoms is not None and index < len(magmoms) else None
        frames.append({
            'symbols': list(symbols), 'positions': restore_atom_order(np.asarray(positions[index]), atom_order),
            'cell': np.asarray(cells[index]), 'energy': float(energies[index]),
            'forces': restore_atom_order(np.asarray(forces[index]), atom_order),
            'stress': (-np.asarray(stress[index]) * KBAR_TO_EV_PER_A3
                       if stress is not None and index < len(stress) else None),
            'magmoms': restore_atom_order(moments, atom_order),
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


def scf_converged_per_step(vasprun: str, nelm: int | None = None) -> list[bool]:
    """Per ionic step of a vasprun.xml: False where the electronic loop used all NELM iterations (VASP then moves on
    with an unconverged density, and aiida-vasp only flags the run as a whole). NELM from the file's INCAR, else
    ``nelm``, else VASP's default 60."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.fromstring(vasprun)
    tag = root.find("incar/i[@name='NELM']")
    limit = int(tag.text) if tag is not None else int(nelm or 60)
    return [len(step.findall('scstep')) < limit for step in root.findall('calculation')]
