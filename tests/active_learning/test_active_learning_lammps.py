"""One active-learning iteration whose explorations run ACE in LAMMPS (`pace/extrapolation` in the ML-PACE build):
the candidates, selection and refit work the same as with the ASE engine."""

from __future__ import annotations

import pytest
from aiida.engine import run_get_node

from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain

from .conftest import NAPO3, failures, melt_frames
from .test_active_learning_loop import teacher_labels

pytestmark = pytest.mark.slow


def test_lammps_exploration(al_codes, lammps_pace_executable, reference_potential_yaml):
    from aiida_glassml.data.ace_potential import AcePotentialData
    from aiida_glassml.tools.setup import LAMMPS_PACE_LABEL, register_lammps_pace

    register_lammps_pace(lammps_pace_executable, 'al-localhost', echo=lambda _message: None)
    from aiida import orm

    lammps = orm.load_code(f'{LAMMPS_PACE_LABEL}@al-localhost')
    teacher = AcePotentialData.get_or_create(reference_potential_yaml)
    start = teacher_labels(al_codes, teacher, melt_frames(reference_potential_yaml, 3, seed=300), 'start')
    test = teacher_labels(al_codes, teacher, melt_frames(reference_potential_yaml, 1, seed=400), 'test')
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        start, {'NaPO3': NAPO3}, test_set=test, md_code=lammps, label_code=al_codes['python'],
        pacemaker_code=al_codes['pacemaker'], label_engine='potential', label_potential=teacher, protocol='fast',
        engine='lammps', overrides={'settings': {'max_iterations': 1},
                                    'exploration': {'packings_per_composition': 2, 'md': {'gamma_lo': 1.1}},
                                    'stability': {'md': {'time': 0.05}}},
    )  # fmt: skip
    _, node = run_get_node(builder)
    iteration = [c for c in node.called if c.process_label == 'ActiveLearningIterationWorkChain'][0]
    assert iteration.is_finished_ok, failures(node)
    row = iteration.outputs.report.get_dict()
    runs = [c for c in iteration.called if c.process_label == 'LammpsMDBaseWorkChain']
    assert len(runs) == 2 + (row['outcome'] == 'refitted')  # two explorations (and the stability run after a refit)
    assert row['runs'] == 2 and row['runs'] == row['quiet'] + row['extrapolating'] + row['halted'] + row['crashed']
    if row['outcome'] == 'refitted':
        selection = iteration.outputs.selection.get_dict()
        assert selection['n_selected'] == row['n_labelled'] >= 1
        assert all(frame['max_gamma'] >= 1.1 for frame in selection['frames'])
        assert row['stability']['survived'] in (True, False)
    assert node.outputs.report['stop']['stop_reason'] in ('max_iterations', 'converged', 'few_new_frames')
