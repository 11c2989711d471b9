"""Potentials as jobs: :func:`run_evaluate_potential` (metrics + per-frame errors of an ACE potential or an MLIP on
any training set, an ``EvaluatePotentialCalculation``) and :func:`build_active_set` (an ``ActiveSetCalculation``,
``pace_activeset``). Both check their inputs first and store nothing on bad input."""

from __future__ import annotations

import typing as t

from aiida import orm

from aiida_glassml.calculations.evaluate_potential import check_evaluation_inputs, evaluation_builder
from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.data.mlip_potential import MlipPotentialData
from aiida_glassml.data.training_set import TrainingSetData

__all__ = ('build_active_set', 'check_evaluation_inputs', 'run_evaluate_potential')


def run_evaluate_potential(potential: AcePotentialData | MlipPotentialData, dataset: TrainingSetData,
                           reference_energies: t.Mapping[str, float] | orm.Dict | None = None, *,
                           parity: bool = False, code: orm.AbstractCode | None = None) -> dict:  # fmt: skip
    """Run an ``EvaluatePotentialCalculation`` of ``potential`` on ``dataset`` and return its outputs (``metrics``,
    ``frame_errors``; with ``parity`` also ``energy_parity`` and ``force_parity``). A potential that does not cover
    the dataset's elements, bad reference energies or no python code raise before anything is stored; a failed job
    raises AcePotentialError naming the node. ``code``: default ``glassml-python`` (or the potential's own)."""
    from aiida.engine import run_get_node

    from aiida_glassml.common.ace import AcePotentialError

    builder = evaluation_builder(potential, dataset, reference_energies, parity, code)
    results, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise AcePotentialError(f'EvaluatePotentialCalculation<{node.pk}> failed with exit status {node.exit_status}: '
                                f'{node.exit_message}; see `verdi process report {node.pk}`.')  # fmt: skip
    return {name: node for name, node in results.items() if name not in ('remote_folder', 'retrieved')}


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
