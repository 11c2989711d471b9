"""A small real provenance graph for the trace tests: two LabelWorkChain runs with the teacher (the published ACE
potential) on tiny NaPO3 packings, their sets merged, and parity plots of the merged set (a figure two labelling
CalcJobs stand behind, one of them along two paths)."""

from __future__ import annotations

import sys
import types

import pytest

NAPO3 = {'units': ['NaPO3'], 'fractions': [1.0]}
#: structures labelled by each LabelWorkChain run: 2 then 1, so 3 labelled frames in all
STRUCTURES_PER_RUN = (2, 1)


def trace_code(workdir):
    """The venv python as the teacher's code on the computer `trace-localhost` (made, or configured, on first use:
    after an archive import the computer exists unconfigured)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer('trace-localhost')
    except NotExistent:
        computer = orm.Computer(
            label='trace-localhost', hostname='localhost', transport_type='core.local', scheduler_type='core.direct',
            workdir=str(workdir),
        ).store()  # fmt: skip
    if not computer.is_configured:
        computer.configure(safe_interval=0.0)
        computer.set_minimum_job_poll_interval(0.0)
    try:
        return orm.load_code(f'glassml-python@{computer.label}')
    except NotExistent:
        return orm.InstalledCode(
            computer=computer, filepath_executable=sys.executable, label='glassml-python',
            default_calc_job_plugin='glassml.potential_label', prepend_text='export OMP_NUM_THREADS=1',
        ).store()  # fmt: skip


def napo3_structures(n: int, seed: int) -> dict:
    """``n`` seeded 20-atom NaPO3 packings as StructureData."""
    from aiida import orm

    from aiida_glassml.structures import generate_random_structure

    return {f'napo3_{seed}_{index}': orm.StructureData(ase=generate_random_structure(NAPO3, seed + index,
                                                                                     {'n_atoms': 20}).atoms)
            for index in range(n)}  # fmt: skip


@pytest.fixture(scope='module')
def study(aiida_profile, tmp_path_factory, reference_potential_yaml, reference_potential_yace):
    """Build the graph once per module: ``labels`` (the two LabelWorkChain nodes), ``merged``, ``figure``
    (energy_parity.png of the merged set, with the first run's set as test set, made by an
    EvaluatePotentialCalculation) and ``potential``."""
    from aiida.engine import run_get_node

    from aiida_glassml.calculations.evaluate_potential import evaluation_builder
    from aiida_glassml.calcfunctions.training_set import run_merge_training_sets
    from aiida_glassml.data.ace_potential import AcePotentialData
    from aiida_glassml.workflows.label import LabelWorkChain

    code = trace_code(tmp_path_factory.mktemp('trace_work'))
    potential = AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)
    labels = []
    for seed, n_structures in zip((1, 11), STRUCTURES_PER_RUN):
        builder = LabelWorkChain.get_builder_from_protocol(
            code, napo3_structures(n_structures, seed), engine='potential', mode='single_point', protocol='fast',
            potential=potential,
        )  # fmt: skip
        _, node = run_get_node(builder)
        assert node.is_finished_ok, node.exit_message
        labels.append(node)
    merged = run_merge_training_sets(*(node.outputs.training_set for node in labels))['training_set']
    figures, node = run_get_node(evaluation_builder(potential, labels[0].outputs.training_set, parity=True,
                                                    code=code, training_set=merged))  # fmt: skip
    assert node.is_finished_ok, node.exit_message
    return types.SimpleNamespace(labels=labels, merged=merged, figure=figures['energy_parity'], potential=potential)
