"""Evaluate an ACE potential on labelled frames with pyace's ``PyACECalculator`` (called, never re-implemented).

No AiiDA imports. About 70 ms per 100-atom frame for a 250-function potential on one core.
"""

from __future__ import annotations

import pathlib
import typing as t

import numpy as np

from aiida_glassml.common import ace
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.fitting.metrics import compute_metrics


def predict(yaml_path: str | pathlib.Path, frameset: FrameSet, asi_path: str | pathlib.Path | None = None,
            progress: t.Callable[[int], None] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Energies (F,), forces (N, 3) and, with an active set, the per-atom extrapolation grade gamma (N,)."""
    from pyace import PyACECalculator

    calc = PyACECalculator(basis_set=str(yaml_path))
    if asi_path is not None:
        calc.set_active_set(str(asi_path))
    energies, forces, gammas = [], [], []
    for index, atoms in enumerate(frameset.to_atoms()):
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        if asi_path is not None:
            gammas.append(np.asarray(calc.results['gamma'], dtype=float).copy())
        if progress is not None:
            progress(index)
    result = {'energy': np.array(energies), 'forces': np.concatenate(forces).reshape(-1, 3)}
    if asi_path is not None:
        result['gamma'] = np.concatenate(gammas)
    return result


def reference_energy_of(yaml_path: str | pathlib.Path) -> dict | None:
    """The per-element reference energies pacemaker recorded in the potential's metadata, if any."""
    return ace.parse_bbasis_yaml(pathlib.Path(yaml_path).read_bytes())['reference_energy']


def check_covers(potential_elements: t.Sequence[str], data_elements: t.Iterable[str]) -> None:
    """Raises AcePotentialError when the data contain elements the potential has no parameters for."""
    missing = sorted(set(data_elements) - set(potential_elements))
    if missing:
        raise ace.AcePotentialError(
            f'the potential covers {list(potential_elements)} but the data also contains {missing}; evaluate a '
            'potential fitted for every element of the data.'
        )


def check_reference_energies(reference_energy, elements=None) -> None:
    """Reference energies must map element symbols to numbers (eV) and, given the data's ``elements``, cover them."""
    from ase.data import chemical_symbols

    if not isinstance(reference_energy, t.Mapping) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in reference_energy.values()
    ):  # fmt: skip
        raise ace.AcePotentialError(
            f'reference energies must map element symbols to energies in eV, e.g. {{"Na": -0.075}}; got '
            f'{reference_energy!r}.'
        )
    unknown = sorted(k for k in reference_energy if k not in chemical_symbols[1:] and k != 'shift')
    if unknown:
        raise ace.AcePotentialError(f'reference energies name unknown element(s) {unknown}; use symbols such as Na.')
    missing = sorted(set(elements or ()) - set(reference_energy))
    if reference_energy and missing:
        raise ace.AcePotentialError(f'reference energies give {sorted(set(reference_energy) - {"shift"})} but the data '
                                    f'also contains {missing}; give one for every element (or none, to use the '
                                    "potential's own).")  # fmt: skip


def evaluate(
    yaml_path: str | pathlib.Path,
    frameset: FrameSet,
    reference_energy: t.Mapping[str, float] | None = None,
    progress: t.Callable[[int], None] | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics and per-frame errors of a potential on frames. Reference energies: ``reference_energy`` when given,
    else the potential's metadata, else none (the data energies are then taken as already corrected)."""
    yaml_path = pathlib.Path(yaml_path)
    info = ace.parse_bbasis_yaml(yaml_path.read_bytes())
    check_covers(info['elements'], frameset.elements)
    source = 'argument'
    if reference_energy is None:
        reference_energy = info['reference_energy']
        source = 'potential metadata' if reference_energy else 'none'
    prediction = predict(yaml_path, frameset, progress=progress)
    metrics, errors = compute_metrics(frameset, prediction['energy'], prediction['forces'], reference_energy)
    metrics['reference_energy'] = dict(reference_energy) if reference_energy else None
    metrics['reference_energy_source'] = source
    errors['forces_predicted'] = prediction['forces']
    return metrics, errors
