"""Quantum ESPRESSO (pw.x) labelling: ``pw`` parameters for AIMD (``calculation='md'``) and single points (``scf``),
and frames from the arrays of aiida-quantumespresso's ``output_trajectory`` (eV, Å, eV/Å; stress GPa in QE's sign).
"""

from __future__ import annotations

import copy
import typing as t

import numpy as np

from aiida_glassml.common.units import GPA_TO_EV_PER_A3, HARTREE_TO_EV

from .cp2k import DEFAULT_INITIAL_MAGNETIZATION
from .errors import LabelingInputError
from .vasp import PRESETS as VASP_PRESETS

# pw.x's time unit for `dt` is the Rydberg atomic unit of time.
RY_TIME_FS = 4.8378e-2
# DFT+U (eV) when `qe.hubbard_u` is null: the U of the VASP preset of each element's study (nafepo4: Fe;
# na3v2po43: V), so that a change there follows here.
DEFAULT_HUBBARD_U = {'Fe': float(VASP_PRESETS['nafepo4']['hubbard_u']['Fe']),
                     'V': float(VASP_PRESETS['na3v2po43']['hubbard_u']['V'])}  # fmt: skip
# Starting moment (fraction of the valence charge) when the pseudopotential's valence is not known.
FALLBACK_STARTING_MAGNETIZATION = 0.5


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


def hubbard_u_values(settings: dict, elements: t.Iterable[str]) -> dict[str, float]:
    """Element -> U (eV) of the ``qe`` settings for ``elements``, those without U left out: ``settings['hubbard_u']``
    null gives :data:`DEFAULT_HUBBARD_U`, ``{}`` none, a mapping exactly its values."""
    given = settings.get('hubbard_u')
    values = DEFAULT_HUBBARD_U if given is None else given
    result = {}
    for element in sorted(set(elements)):
        u = float(values.get(element, 0.0))
        if u < 0:
            raise LabelingInputError(f'`qe.hubbard_u` of {element} is {u} eV; U must be 0 or positive.')
        if u > 0:
            result[element] = u
    return result


def build_pw_parameters(
    symbols: t.Sequence[str], settings: dict, mode: str, md: dict | None = None,
    recommended_cutoffs: tuple[float, float] | None = None, kind_names: t.Sequence[str] | None = None,
    valences: t.Mapping[str, float] | None = None,
) -> dict:  # fmt: skip
    """The ``pw.parameters`` namelists for one structure. ``settings`` is the ``qe`` block of ``label_qe.yaml``;
    ``recommended_cutoffs`` (ecutwfc, ecutrho in Ry) those of the pseudopotential family, if it has any.
    ``kind_names`` (default: the symbols) are the structure's kinds, which key the per-species inputs
    (aiida-quantumespresso writes ``Hubbard_U(i)`` and ``starting_magnetization(i)`` from dicts keyed by kind);
    ``valences`` (element -> the pseudopotential's valence charge) turn the initial moments (μB) into pw.x's fractions.

    DFT+U in the syntax of QE 6.x (``lda_plus_u``, ``lda_plus_u_kind = 0``: Dudarev, as VASP's LDAUTYPE 2, on atomic
    projectors; the ``HUBBARD`` card of QE 7.1+ is not used), with :func:`hubbard_u_values`."""
    if mode not in ('aimd', 'single_point'):
        raise LabelingInputError(f'unknown labelling mode `{mode}`; use `aimd` or `single_point`.')
    n_atoms = len(symbols)
    kinds = sorted(set(zip(kind_names or symbols, symbols)))  # (kind, element)
    ecutwfc, ecutrho = select_cutoffs(settings, recommended_cutoffs)
    system = {'ecutwfc': ecutwfc, 'ecutrho': ecutrho, **copy.deepcopy(settings['system'])}
    magnetization = {**DEFAULT_INITIAL_MAGNETIZATION, **(settings.get('initial_magnetization') or {})}
    magnetic = sorted({s for s in symbols if magnetization.get(s)})
    spin = settings.get('spin_polarised', 'auto')
    if spin is True or (spin == 'auto' and magnetic):
        system['nspin'] = 2
        system['starting_magnetization'] = {
            kind: _starting_magnetization(magnetization.get(kind, magnetization.get(element, 0)), element, valences)
            for kind, element in kinds
        }  # fmt: skip
        if system.get('occupations', 'fixed') == 'fixed':
            system.update({'occupations': 'smearing', 'smearing': 'gaussian', 'degauss': 0.01})
    hubbard = hubbard_u_values(settings, symbols)
    if hubbard:
        # lower case: aiida-quantumespresso's key for the Hubbard_U(i) of each species, keyed by kind
        u_by_kind = {kind: hubbard[element] for kind, element in kinds if element in hubbard}
        system.update({'lda_plus_u': True, 'lda_plus_u_kind': 0, 'hubbard_u': u_by_kind})
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


def _starting_magnetization(moment: float, element: str, valences: t.Mapping[str, float] | None) -> float:
    """pw.x's ``starting_magnetization``: the initial moment (μB) over the valence charge, within [-1, 1]; without the
    valence, ±0.5 (clearly magnetic) for a magnetic element."""
    if not moment:
        return 0.0
    valence = float((valences or {}).get(element) or 0)
    if valence <= 0:
        return float(np.copysign(FALLBACK_STARTING_MAGNETIZATION, moment))
    return float(np.clip(round(moment / valence, 4), -1.0, 1.0))


# pw.x's defaults (Ry; iterations) when the input sets neither.
PW_DEFAULT_CONV_THR, PW_DEFAULT_ELECTRON_MAXSTEP = 1e-6, 100


def scf_converged_per_step(arrays: dict, count: int, electron_maxstep: int, conv_thr: float) -> list[bool] | None:
    """Whether the SCF of each of the first ``count`` force evaluations converged, from ``output_trajectory``'s
    ``scf_iterations`` (one per evaluation, from pw.x's XML) and ``scf_accuracy`` (eV, every SCF iteration, from its
    output). A step that used fewer than ``electron_maxstep`` iterations converged (pw.x stops iterating then); one
    that used all of them converged only if its last estimated accuracy is below ``conv_thr`` (Ry), and counts as
    unconverged when the accuracy is not there. None when the iterations are not recorded step by step."""
    iterations = [int(n) for n in np.asarray(arrays.get('scf_iterations', []), dtype=int).ravel()]
    if len(iterations) < count:
        return None
    accuracy = np.asarray(arrays.get('scf_accuracy', []), dtype=float).ravel()
    ends = np.cumsum(iterations[:count])
    aligned = len(accuracy) >= (ends[-1] if count else 0)  # one accuracy per iteration, in order
    threshold = float(conv_thr) * HARTREE_TO_EV / 2  # Ry -> eV
    return [
        n < int(electron_maxstep) or bool(aligned and accuracy[end - 1] < threshold)
        for n, end in zip(iterations[:count], ends)
    ]


def frames_from_pw_arrays(arrays: dict, symbols: t.Sequence[str], parameters: dict, mode: str,
                          sample_every: int = 1, input_parameters: dict | None = None) -> list[dict]:  # fmt: skip
    """Frames from ``output_trajectory`` arrays: ``positions``, ``cells``, ``energy``, ``forces``, ``stress`` and, when
    spin-polarised, ``atomic_magnetic_moments``. Index ``i`` is the i-th force evaluation (0: the start structure);
    MD frames are taken every ``sample_every`` steps. A run that stopped early yields the steps it completed. Every
    frame says whether its SCF converged (``scf_converged``, from ``input_parameters``' ``electron_maxstep`` and
    ``conv_thr``, the pw.x input); the labelling work chain drops those that did not."""
    import re

    symbols = [re.sub(r'\d+$', '', s) for s in symbols]
    energies = np.asarray(arrays.get('energy', []), dtype=float)
    forces = np.asarray(arrays.get('forces', []), dtype=float)
    count = min(len(energies), len(forces), len(arrays.get('positions', [])))
    stress = arrays.get('stress')
    moments = arrays.get('atomic_magnetic_moments')
    electrons = (input_parameters or {}).get('ELECTRONS', {})
    converged = scf_converged_per_step(
        arrays, count, electrons.get('electron_maxstep', PW_DEFAULT_ELECTRON_MAXSTEP),
        electrons.get('conv_thr', PW_DEFAULT_CONV_THR),
    )  # fmt: skip
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
            'scf_converged': True if converged is None else converged[index],
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
