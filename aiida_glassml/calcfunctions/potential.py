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


@calcfunction
def build_active_set(potential: AcePotentialData, dataset: TrainingSetData, settings: orm.Dict | None = None):
    """A copy of ``potential`` with a MaxVol active set (``.asi``) built by pacemaker's ``pace_activeset`` on
    ``dataset``, so that MD can track the extrapolation grade. ``settings``: ``gamma_tolerance`` (default 1.01),
    ``all_atoms`` (default False: pacemaker drops atoms with large force errors first)."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.tools.setup import find_executable

    options = settings.get_dict() if settings is not None else {}
    executable = find_executable('pace_activeset')
    if executable is None:
        raise AcePotentialError('`pace_activeset` not found; install python-ace==0.4.0rc1.')
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = potential.write_files(folder)
        dataset.export_pacemaker_pickle(folder / 'data.pckl.gzip')
        command = [executable, '-d', 'data.pckl.gzip', paths['yaml'].name,
                   '-g', str(options.get('gamma_tolerance', 1.01))]  # fmt: skip
        if options.get('all_atoms', False):
            command.append('-a')
        proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        asi = folder / 'potential.asi'
        if proc.returncode != 0 or not asi.exists():
            raise AcePotentialError(f'pace_activeset failed ({proc.returncode}): {proc.stderr.strip()[-800:]}')
        node = AcePotentialData(yaml=paths['yaml'], yace=paths['yace'], asi=asi, metrics=potential.metrics)
        shutil.rmtree(folder, ignore_errors=True)
    return node
