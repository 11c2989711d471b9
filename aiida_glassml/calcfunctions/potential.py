"""calcfunctions on potentials: ``evaluate_potential`` (metrics + per-frame errors of an ACE potential or an MLIP on
any training set) and
``parity_plots`` (PNG figures whose provenance links them to the potential and the data behind them).

Calling a calcfunction stores its inputs first, so use :func:`run_evaluate_potential`, which checks the inputs and
stores nothing on bad input. :func:`build_active_set` runs an ``ActiveSetCalculation`` (``pace_activeset``)."""

from __future__ import annotations

import io
import typing as t

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.fitting import evaluate as pure_evaluate
from aiida_glassml.fitting.parity import parity_png

ERROR_ARRAYS = ('n_atoms', 'energy_reference', 'energy_predicted', 'energy_error_per_atom', 'force_mae', 'force_rmse')


def _evaluate(potential, dataset: TrainingSetData, reference_energies: dict | None = None):
    if isinstance(potential, MlipPotentialData):
        from aiida_glassml.common import mlip

        return mlip.evaluate(potential.get_calculator(), dataset.get_frameset(), reference_energies, potential.elements)
    paths = potential._cached_files()
    return pure_evaluate.evaluate(paths['yaml'], dataset.get_frameset(), reference_energy=reference_energies)


@calcfunction
def evaluate_potential(potential: t.Union[AcePotentialData, MlipPotentialData], dataset: TrainingSetData,
                       reference_energies: orm.Dict | None = None):  # fmt: skip
    """Energy (meV/atom) and force (meV/Å) MAE/RMSE of ``potential`` on ``dataset``, plus per-frame errors.

    Reference energies: ``reference_energies`` when given, else those in an ACE potential's metadata, else none (an
    MLIP's total energies are then compared with the data's as they are)."""
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
def parity_plots(potential: t.Union[AcePotentialData, MlipPotentialData], train: TrainingSetData, test: TrainingSetData | None = None):
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


def run_evaluate_potential(potential: AcePotentialData | MlipPotentialData, dataset: TrainingSetData,
                           reference_energies: t.Mapping[str, float] | orm.Dict | None = None) -> dict:
    """Check, then run :func:`evaluate_potential`: a potential that does not cover the dataset's elements, or bad
    reference energies, raise before anything is stored (the calcfunction would store its inputs and an excepted
    node). Returns its outputs ``metrics`` and ``frame_errors``."""
    check_evaluation_inputs(potential, dataset, reference_energies)
    if isinstance(reference_energies, t.Mapping):
        reference_energies = orm.Dict(dict(reference_energies))
    args = {'reference_energies': reference_energies} if reference_energies is not None else {}
    return evaluate_potential(potential, dataset, **args)


def check_evaluation_inputs(potential, dataset, reference_energies=None) -> None:
    """Raises AcePotentialError (MlipError for an MLIP) naming the fix when ``potential`` cannot be evaluated on
    ``dataset``."""
    from aiida_glassml.common.ace import AcePotentialError

    if not isinstance(potential, (AcePotentialData, MlipPotentialData)):
        raise AcePotentialError(f'potential must be an AcePotentialData or MlipPotentialData, got '
                                f'{type(potential).__name__}.')  # fmt: skip
    if not isinstance(dataset, TrainingSetData):
        raise AcePotentialError(f'dataset must be a TrainingSetData, got {type(dataset).__name__}.')
    elements = dataset.base.attributes.get('elements', None) or dataset.get_frameset().elements
    potential.check_covers(elements)
    if reference_energies is not None:
        values = reference_energies.get_dict() if isinstance(reference_energies, orm.Dict) else reference_energies
        pure_evaluate.check_reference_energies(values, elements)


def build_active_set(potential: AcePotentialData, dataset: TrainingSetData, settings: orm.Dict | dict | None = None,
                     code: orm.AbstractCode | None = None) -> AcePotentialData:
    """A copy of ``potential`` with a MaxVol active set (``.asi``) built by ``pace_activeset`` on ``dataset``, so
    that MD can track the extrapolation grade. Runs :class:`~aiida_glassml.calculations.active_set.ActiveSetCalculation`
    with ``code`` (default: the code labelled ``pace_activeset``, registered by ``aiida-glassml setup``).

    ``settings``: ``gamma_tolerance`` (1.01), ``all_atoms`` (False: pacemaker drops atoms with large force errors
    first), ``maxvol_iters`` (300). Bad input (elements not covered, too few environments, unknown settings, no code)
    raises before anything is stored; a failed job raises AcePotentialError naming the node."""
    from aiida.engine import run_get_node

    from aiida_glassml.calculations.active_set import ActiveSetCalculation, check_active_set_inputs
    from aiida_glassml.common.ace import AcePotentialError

    if isinstance(settings, orm.Dict):
        settings = settings.get_dict()
    settings = dict(settings or {})
    check_active_set_inputs(potential, dataset, settings)
    if code is None:
        code = _load_code('pace_activeset')
    builder = ActiveSetCalculation.get_builder()
    builder.code = code
    builder.potential = potential
    builder.dataset = dataset
    if settings:
        builder.settings = orm.Dict(settings)
    results, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise AcePotentialError(f'ActiveSetCalculation<{node.pk}> failed with exit status {node.exit_status}: '
                                f'{node.exit_message}; see `verdi process report {node.pk}`.')  # fmt: skip
    return results['potential']


def _load_code(label: str) -> orm.AbstractCode:
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    from aiida_glassml.common.ace import AcePotentialError

    try:
        return orm.load_code(label)
    except (NotExistent, MultipleObjectsError) as exc:
        raise AcePotentialError(
            f'no unique code labelled `{label}` ({exc}); register it with `aiida-glassml setup` or pass `code=`.'
        ) from exc
