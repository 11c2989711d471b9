"""The force-deviation selector end to end with real components: the loop fits a committee of two small ACE potentials
(pacemaker, seeded subsets), explores with it in ASE/pyace tracking σ_F,max, selects the frames inside the σ window,
labels them with the published potential as teacher and refits both members: one real iteration. Bad committee input
is refused before anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.fitting.active_learning import ActiveLearningError
from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain

from .conftest import NAPO3, melt_frames
from .test_active_learning_loop import teacher_labels

pytestmark = pytest.mark.slow

#: tiny 5-iteration fits disagree by several eV/Å at 5000 K: a window that such a committee's frames fall into
SIGMA_LO, SIGMA_HI = 0.5, 50.0
OVERRIDES = {
    'settings': {'selector': 'force_deviation', 'max_iterations': 1, 'max_select': 4, 'committee_holdout': 0.25},
    'exploration': {'packings_per_composition': 2, 'md': {'sigma_lo': SIGMA_LO, 'sigma_hi': SIGMA_HI}},
    'stability': {'md': {'time': 0.02}},
    'fit': {'make_plots': False, 'pacemaker': {'settings': {'maxiter': 5}}},
}


@pytest.fixture(scope='module')
def teacher(aiida_profile, reference_potential_yaml):
    return AcePotentialData.get_or_create(reference_potential_yaml)


@pytest.fixture(scope='module')
def committee_loop(al_codes, teacher, reference_potential_yaml):
    start = teacher_labels(al_codes, teacher, melt_frames(reference_potential_yaml, 3, seed=300), 'cstart')
    test = teacher_labels(al_codes, teacher, melt_frames(reference_potential_yaml, 1, seed=400), 'ctest')
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        start, {'NaPO3': NAPO3}, test_set=test, md_code=al_codes['python'], label_code=al_codes['python'],
        pacemaker_code=al_codes['pacemaker'], label_engine='potential', label_potential=teacher, protocol='fast',
        overrides=OVERRIDES,
    )  # fmt: skip
    _, node = run_get_node(builder)
    return node, start, test


def _iteration(node):
    (iteration,) = [c for c in node.called if c.process_label == 'ActiveLearningIterationWorkChain']
    return iteration


def test_one_iteration_with_a_committee(committee_loop):
    """Two members fitted on different seeded subsets, explored with, selected by σ and refitted."""
    from .conftest import failures

    node, start, _ = committee_loop
    assert node.exit_status in (0, ActiveLearningWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status), \
        failures(node)  # fmt: skip
    iteration = _iteration(node)
    assert iteration.is_finished_ok, failures(iteration)
    initial = sorted((c for c in node.called if c.process_label == 'FitAceWorkChain'), key=lambda c: c.pk)
    assert len(initial) == 2
    # the members differ by their seeded subset of the training set (and pacemaker seed)
    seeds = {c.inputs.pacemaker.settings['seed'] for c in initial}
    subsets = [set(c.outputs.train_set.get_frameset().frame_hashes()) for c in initial]
    assert len(seeds) == 2 and subsets[0] != subsets[1]
    everything = set(start.get_frameset().frame_hashes())
    assert all(subset < everything for subset in subsets)
    committee_in = dict(iteration.inputs.committee)
    assert sorted(committee_in) == ['member_00', 'member_01']
    assert {m.uuid for m in committee_in.values()} == {c.outputs.potential.uuid for c in initial}
    assert 'potential' not in iteration.inputs

    runs = {link.link_label: link.node for link in iteration.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()
            if link.link_label.startswith('explore_')}  # fmt: skip
    assert len(runs) == 2
    for run in runs.values():
        assert {m.uuid for m in run.inputs.committee.values()} == {m.uuid for m in committee_in.values()}
        assert run.inputs.protocol['force_deviation']['sigma_lo'] == SIGMA_LO and run.inputs.protocol['gamma'] is None
        assert run.exit_status in (0, 351)  # completed, or halted above sigma_hi with its frames kept
        sigma = run.outputs.force_deviation.get_array('max_force_deviation')
        assert sigma.size > 0 and run.outputs.results['max_force_deviation'] == pytest.approx(sigma.max())


def test_selected_frames_lie_in_the_window_most_uncertain_first(committee_loop):
    node, _, _ = committee_loop
    iteration = _iteration(node)
    selection = iteration.outputs.selection.get_dict()
    assert selection['selector'] == 'force_deviation' and 1 <= selection['n_selected'] <= 4
    sigma = [frame['max_force_deviation'] for frame in selection['frames']]
    assert all(SIGMA_LO < s < SIGMA_HI for s in sigma) and sigma == sorted(sigma, reverse=True)
    assert selection['n_selected'] == min(4, selection['n_selectable'])
    # each selected frame is made from its run's candidate trajectory, and that run made the trajectory
    (select,) = [c for c in iteration.called if c.process_label == 'select_committee_frames']
    runs = {link.link_label: link.node for link in iteration.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()}
    for frame in selection['frames']:
        trajectory = orm.load_node(frame['source_uuid'])
        assert trajectory.creator.uuid == runs[frame['source']].uuid
        assert trajectory.get_array('max_force_deviation')[frame['frame']] == pytest.approx(frame['max_force_deviation'])
        structure = select.outputs[frame['key']]
        assert np.allclose(structure.get_ase().positions, trajectory.get_step_structure(frame['frame']).get_ase().positions)
    labelled = iteration.outputs.labels
    assert labelled.n_frames == selection['n_selected']
    row = iteration.outputs.report.get_dict()
    assert row['selector'] == 'force_deviation' and row['n_selected'] == selection['n_selected']
    assert row['max_force_deviation_histogram']['n'] == row['runs'] - row['crashed']


def test_the_committee_is_refitted_member_by_member(committee_loop):
    node, start, _ = committee_loop
    iteration = _iteration(node)
    before, after = dict(iteration.inputs.committee), dict(iteration.outputs.committee)
    assert sorted(after) == sorted(before) == ['member_00', 'member_01']
    fits = {link.link_label: link.node for link in iteration.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()
            if link.link_label.startswith('fit_')}  # fmt: skip
    assert sorted(fits) == ['fit_member_00', 'fit_member_01']
    for label, fit in fits.items():
        member = label[len('fit_'):]
        assert fit.inputs.initial_potential.uuid == before[member].uuid
        assert fit.outputs.potential.uuid == after[member].uuid
        assert fit.inputs.dataset.uuid == iteration.outputs.train_set.uuid
    assert iteration.outputs.train_set.n_frames == start.n_frames + iteration.outputs.labels.n_frames
    assert {m.uuid for m in node.outputs.committee.values()} == {m.uuid for m in after.values()}
    assert node.outputs.potential.uuid == after['member_00'].uuid
    assert node.outputs.report['rows'][0]['committee_out'] == {k: v.uuid for k, v in sorted(after.items())}


def test_bad_committee_input_stores_nothing(committee_loop, al_codes, teacher, node_count):
    node, start, test = committee_loop
    committee = dict(node.outputs.committee)
    kwargs = dict(test_set=test, md_code=al_codes['python'], label_code=al_codes['python'],
                  pacemaker_code=al_codes['pacemaker'], label_engine='potential', label_potential=teacher,
                  protocol='fast')  # fmt: skip
    cases = [
        ({'committee': {'a': committee['member_00'], 'b': teacher}}, OVERRIDES, 'mixes element sets'),
        ({'committee': committee}, {**OVERRIDES, 'exploration': {'md': {'sigma_lo': 5.0, 'sigma_hi': 1.0}}},
         r'sigma_lo \(5.0 eV/Å\) must be below sigma_hi \(1.0 eV/Å\)'),
        ({'committee': committee}, {**OVERRIDES, 'exploration': {'md': {'sigma_lo': 2.0, 'sigma_hi': 2.0}}},
         'must be below sigma_hi'),
        ({'potential': committee['member_00']}, OVERRIDES, 'give `committee`'),
        ({'committee': committee}, {'settings': {'selector': 'gamma'}}, 'only with `settings.selector: force_deviation`'),
    ]  # fmt: skip
    for extra, overrides, match in cases:
        before = node_count()
        with pytest.raises(ActiveLearningError, match=match):
            ActiveLearningWorkChain.get_builder_from_protocol(node.outputs.train_set, {'NaPO3': NAPO3}, **kwargs,
                                                              overrides=overrides, **extra)  # fmt: skip
        assert node_count() == before, match
    # a good committee continues the loop: validated, nothing stored
    before = node_count()
    builder = ActiveLearningWorkChain.get_builder_from_protocol(node.outputs.train_set, {'NaPO3': NAPO3}, **kwargs,
                                                                overrides=OVERRIDES, committee=committee)  # fmt: skip
    assert dict(builder.committee) == committee and node_count() == before
