"""Quantum ESPRESSO (pw.x) labelling: ``pw`` parameters for AIMD (``calculation='md'``) and single points (``scf``),
and frames from the arrays of aiida-quantumespresso's ``output_trajectory`` (eV, Å, eV/Å; stress GPa in QE's sign).
"""

from __future__ import annotations

import copy
import typing as t

import numpy as np

from aiida_glassml.common.units import GPA_TO_EV_PER_A3

from .cp2k import DEFAULT_INITIAL_MAGNETIZATION
from .errors import LabelingInputError

# pw.x's time unit for `dt` is the Rydberg atomic unit of time.
RY_TIME_FS = 4.8378e-2


def select_cutoffs(settings: dict, recommended: tuple[float, float] | None = None) -> tuple[float, float]:
    """(ecutwfc, ecutrho) in Ry: the pseudopotential family's ``recommended`` cutoffs (Ry) times
    ``settings['cutoff_multiplier']``, at least ``settings['ecutwfc']``/``settings['ecutrho']``; those alone when the
    family recommends none."""
    minimum = (float(settings['ecutwfc']), float(settings['ecutrho']))
    if not recommended:
        return minimum
    factor = float(settings.get('cutoff_multiplier', 1.0))
    if factor <= 0:
        raise LabelingInputError(f'`qe.cutoff_multiplier` must be positive, got {factor}; 1.0 uses the family cutoffs.')
    ecutwfc, ecutrho = (max(low, round(factor * float(value), 6)) for low, value in zip(minimum, recommended))
    return ecutwfc, ecutrho


def build_pw_parameters(
    symbols: t.Sequence[str], settings: dict, mode: str, md: dict | None = None,
    recommended_cutoffs: tuple[float, float] | None = None,
) -> dict:  # fmt: skip
    """The ``pw.parameters`` namelists for one structure. ``settings`` is the ``qe`` block of ``label_qe.yaml``;
    ``recommended_cutoffs`` (ecutwfc, ecutrho in Ry) those of the pseudopotential family, if it has any."""
    if mode not in ('aimd', 'single_point'):
        raise LabelingInputError(f'unknown labelling mode `{mode}`; use `aimd` or `single_point`.')
    n_atoms = len(symbols)
    ecutwfc, ecutrho = select_cutoffs(settings, recommended_cutoffs)
    system = {'ecutwfc': ecutwfc, 'ecutrho': ecutrho, **copy.deepcopy(settings['system'])}
    magnetization = {**DEFAULT_INITIAL_MAGNETIZATION, **(settings.get('initial_magnetization') or {})}
    magnetic = sorted({s for s in symbols if magnetization.get(s)})
    spin = settings.get('spin_polarised', 'auto')
    if spin is True or (spin == 'auto' and magnetic):
        system['nspin'] = 2
        # pw.x wants a fraction of the valence charge; 0.5 starts clearly magnetic without knowing the valence.
        system['starting_magnetization'] = {s: 0.5 if s in magnetic else 0.0 for s in sorted(set(symbols))}
        if system.get('occupations', 'fixed') == 'fixed':
            system.update({'occupations': 'smearing', 'smearing': 'gaussian', 'degauss': 0.01})
    parameters = {
        'CONTROL': {'calculation': 'scf', 'tprnfor': True, 'tstress': True},
        'SYSTEM': {**system, 'nosym': True},  # MD breaks any symmetry of the start structure
        'ELECTRONS': {
            'conv_thr': float(settings['conv_thr_per_atom']) * n_atoms,
            'mixing_beta': settings.get('mixing_beta', 0.4),
            'electron_maxstep': settings.get('electron_maxstep', 80),
        },
    }
    if mode == 'aimd':
        # pw.x evaluates forces `nstep` times, the first at the start structure: one more than the MD steps, so that
        # frames 0..steps match CP2K's.
        parameters['CONTROL'].update({'calculation': 'md', 'dt': float(md['timestep']) / RY_TIME_FS,
                                      'nstep': int(md['steps']) + 1})  # fmt: skip
        parameters['IONS'] = {
            'ion_dynamics': 'verlet',
            'ion_temperature': 'svr',
            'tempw': float(md['temperature']),
            # svr's time constant, in steps
            'nraise': max(1, int(round(float(md.get('thermostat_timecon', 50.0)) / float(md['timestep'])))),
        }
    return parameters


def frames_from_pw_arrays(arrays: dict, symbols: t.Sequence[str], parameters: dict, mode: str,
                          sample_every: int = 1) -> list[dict]:  # fmt: skip
    """Frames from ``output_trajectory`` arrays: ``positions``, ``cells``, ``energy``, ``forces``, ``stress`` and, when
    spin-polarised, ``atomic_magnetic_moments``. Index ``i`` is the i-th force evaluation (0: the start structure);
    MD frames are taken every ``sample_every`` steps. A run that stopped early yields the steps it completed."""
    import re

    symbols = [re.sub(r'\d+$', '', s) for s in symbols]
    energies = np.asarray(arrays.get('energy', []), dtype=float)
    forces = np.asarray(arrays.get('forces', []), dtype=float)
    count = min(len(energies), len(forces), len(arrays.get('positions', [])))
    stress = arrays.get('stress')
    moments = arrays.get('atomic_magnetic_moments')
    frames = []
    for index in range(count):
        if mode == 'aimd' and index % sample_every:
            continue
        frames.append({
            'symbols': list(symbols),
            'positions': np.asarray(arrays['positions'][index]),
            'cell': np.asarray(arrays['cells'][index]),
            'energy': float(energies[index]),
            'forces': forces[index],
            'stress': -np.asarray(stress[index]) * GPA_TO_EV_PER_A3
            if stress is not None and index < len(stress) else None,
            'magmoms': np.asarray(moments[index]) if moments is not None and index < len(moments) else None,
            'metadata': {'step': index},
        })  # fmt: skip
    return frames


def check_pseudo_family(symbols: t.Iterable[str], family_label: str | None, family_elements: t.Iterable[str] | None) -> None:
    """Raise LabelingInputError when no family is given, it is not installed (``family_elements`` None) or it lacks
    an element."""
    if not family_label:
        raise LabelingInputError(
            'engine `qe` needs `pseudo_family`: the label of an installed aiida-pseudo family, e.g. after '
            '`aiida-pseudo install sssp -x PBE` or `aiida-pseudo install family <folder> <label>`.'
        )
    if family_elements is None:
        raise LabelingInputError(
            f'pseudopotential family `{family_label}` is not installed; install it with `aiida-pseudo install ...` '
            'or pass the label of an installed family.'
        )
    missing = sorted(set(symbols) - set(family_elements))
    if missing:
        raise LabelingInputError(
            f'pseudopotential family `{family_label}` has no pseudopotential for {", ".join(missing)}; use a family '
            'that covers every element of the structures.'
        )
