"""calcfunctions on ACE potentials: ``evaluate_potential`` (metrics + per-frame errors on any training set) and
``parity_plots`` (PNG figures whose provenance links them to the potential and the data behind them)."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import evaluate as pure_evaluate
from aiida_glassml.fitting.parity import parity_png

ERROR_ARRAYS = ('n_atoms', 'energy_reference', 'energy_predicted', 'energy_error_per_atom', 'force_mae', 'force_rmse')


def _evaluate(potential: AcePotentialData, dataset: TrainingSetData, reference_energies: dict | None = None):
    paths = potential._cached_files()
    return pure_evaluate.evaluate(paths['yaml'], dataset.get_frameset(), reference_energy=reference_energies)


@calcfunction
def evaluate_potential(potential: AcePotentialData, dataset: TrainingSetData, reference_energies: orm.Dict | None = None):
    """Energy (meV/atom) and force (meV/Å) MAE/RMSE of ``potential`` on ``dataset``, plus per-frame errors.

    Reference energies: ``reference_energies`` when given, else those in the potential's metadata, else none."""
    reference = reference_energies.get_dict() if reference_energies is not None else None
    metrics, errors = _evaluate(potential, dataset, reference)
    metrics['units'] = {'energy': 'meV/atom', 'force': 'meV/Å'}
    array = orm.ArrayData()
    for key in ERROR_ARRAYS:
        array.set_array(key, np.asarray(errors[key]))
    array.base.attributes.set('units', {
        'energy_reference': 'eV', 'energy_predicted': 'eV', 'energy_error_per_atom': 'meV/atom',
        'force_mae': 'meV/Å', 'force_rmse': 'meV/Å',
    })  # fmt: skip
    return {'metrics': orm.Dict(metrics), 'frame_errors': array}


@calcfunction
def parity_plots(potential: AcePotentialData, train: TrainingSetData, test: TrainingSetData | None = None):
    """Parity plots of energies per atom and of force components, train and test, as PNG ``SinglefileData``."""
    energy, force, energy_mae, force_mae = {}, {}, {}, {}
    for label, dataset in (('train', train), ('test', test)):
        if dataset is None:
            continue
        metrics, errors = _evaluate(potential, dataset)
        n_atoms = errors['n_atoms']
        energy[label] = (errors['energy_reference'] / n_atoms, errors['energy_predicted'] / n_atoms)
        force[label] = (dataset.get_frameset().forces.ravel(), errors['forces_predicted'].ravel())
        energy_mae[label], force_mae[label] = metrics['energy_mae'], metrics['force_mae']
    energy_png = parity_png(energy, quantity='energy', unit='eV/atom', mae=energy_mae, mae_unit='meV/atom')
    force_png = parity_png(force, quantity='force component', unit='eV/Å', mae=force_mae, mae_unit='meV/Å')
    return {
        'energy_parity': orm.SinglefileData(io.BytesIO(energy_png), filename='energy_parity.png'),
        'force_parity': orm.SinglefileData(io.BytesIO(force_png), filename='force_parity.png'),
    }
