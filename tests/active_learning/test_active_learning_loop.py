"""The active-learning loop end to end with real components: the published NaFePO4 potential as teacher (labels),
real pacemaker fits, real ASE/pyace explorations tracking gamma every step, real pace_select, two iterations and a
recorded stop reason. Provenance, the iteration table, the CLI and the figures are checked on the finished loop."""

from __future__ import annotations

import json

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.tools.provenance import labelling_calculations
from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain
from aiida_glassml.workflows.label import LabelWorkChain

from .conftest import NAPO3, as_structures, melt_frames

pytestmark = pytest.mark.slow

# gamma_lo just above the active set's MaxVol tolerance (1.01), so the small test runs always give candidates;
# 20-atom cells, short stability runs, 10-iteration fits without parity plots: the loop's bookkeeping is under test
OVERRIDES = {
    'exploration': {'packings_per_composition': 2, 'structure_settings': {'n_atoms': 20}, 'md': {'gamma_lo': 1.1}},
    'stability': {'structure_settings': {'n_atoms': 20}, 'md': {'time': 0.02}},
    'fit': {'make_plots': False, 'pacemaker': {'settings': {'maxiter': 10}}},
}


@pytest.fixture(scope='module')
def teacher(aiida_profile, reference_potential_yaml):
    return AcePotentialData.get_or_create(reference_potential_yaml)


def teacher_labels(codes, teacher, atoms_list, prefix):
    builder = LabelWorkChain.get_builder_from_protocol(
        codes['python'], as_structures(atoms_list, prefix), engine='potential', mode='single_point', protocol='fast',
        potential=teacher,
    )  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return results['training_set']


@pytest.fixture(scope='module')
def teacher_loop(al_codes, teacher, reference_potential_yaml):
    start = teacher_labels(al_codes, teacher, melt_frames(reference_potential_yaml, 3, n_atoms=20, seed=100), 'start')
    test = teacher_labels(al_codes, teacher, melt_frames(reference_potential_yaml, 1, n_atoms=20, seed=200), 'test')
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        start, {'NaPO3': NAPO3}, test_set=test, md_code=al_codes['python'], label_code=al_codes['python'],
        pacemaker_code=al_codes['pacemaker'], label_engine='potential', label_potential=teacher, protocol='fast',
        overrides=OVERRIDES,
    )  # fmt: skip
    _, node = run_get_node(builder)
    return node, start, test, builder


def _iterations(node):
    return sorted((c for c in node.called if c.process_label == 'ActiveLearningIterationWorkChain'),
                  key=lambda c: c.inputs.iteration.value)  # fmt: skip


def test_two_iterations_and_a_stop_reason(teacher_loop):
    node, start, _, _ = teacher_loop
    report = node.outputs.report.get_dict()
    stop = report['stop']['stop_reason']
    assert stop in ('max_iterations', 'converged', 'few_new_frames'), report
    if stop == 'max_iterations':
        assert node.exit_status == ActiveLearningWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
        assert len(report['rows']) == 2
    else:
        assert node.is_finished_ok
    iterations = _iterations(node)
    assert [it.inputs.iteration.value for it in iterations] == list(range(1, len(iterations) + 1))
    assert all(it.is_finished_ok for it in iterations)
    assert len(iterations) == 2, 'the fast protocol runs two iterations unless the first one converges'
    # an initial fit was made (no starting potential), each refit starts from the potential before it
    initial_fit = [c for c in node.called if c.process_label == 'FitAceWorkChain']
    assert len(initial_fit) == 1
    previous = initial_fit[0].outputs.potential
    for iteration in iterations:
        assert iteration.inputs.potential.uuid == previous.uuid
        if 'potential' in iteration.outputs:
            fit = [c for c in iteration.called if c.process_label == 'FitAceWorkChain'][0]
            assert fit.inputs.initial_potential.uuid == previous.uuid
            previous = iteration.outputs.potential
    assert node.outputs.potential.uuid == previous.uuid


def test_every_frame_is_accounted_for(teacher_loop):
    node, start, test, _ = teacher_loop
    frames = start.n_frames
    for iteration in _iterations(node):
        row = iteration.outputs.report.get_dict()
        assert row['runs'] == 2 and row['runs'] == row['quiet'] + row['extrapolating'] + row['halted'] + row['crashed']
        if 'labels' in iteration.outputs:
            selection = iteration.outputs.selection.get_dict()
            assert row['n_selected'] == selection['n_selected'] == len(selection['frames']) <= 10
            assert row['n_labelled'] == row['n_selected'] == iteration.outputs.labels.n_frames
            # every selected frame names the exploration run it came from, its step and its gamma
            runs = {link.link_label: link.node for link in iteration.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()}
            for frame in selection['frames']:
                assert frame['source'] in runs and frame['source'].startswith('explore_')
                assert runs[frame['source']].uuid == orm.load_node(frame['source_uuid']).creator.uuid
                assert frame['max_gamma'] >= 1.1 and frame['step'] >= 0
            frames += row['n_labelled']
            assert iteration.outputs.train_set.n_frames == frames
            assert row['dataset_frames'] == frames
            assert row['test_force_rmse'] > 0 and row['train_force_rmse'] > 0
            assert row['stability']['survived'] in (True, False)
            assert iteration.outputs.stability_figure.get_content('rb').startswith(b'\x89PNG')
    assert node.outputs.train_set.n_frames == frames
    assert node.outputs.test_set.uuid == test.uuid


def test_labels_are_the_teachers_and_never_pose_as_dft(teacher_loop, teacher):
    node, _, _, _ = teacher_loop
    calcs = labelling_calculations(node.outputs.potential)
    assert calcs and {c.process_type for c in calcs} == {'aiida.calculations:glassml.potential_label'}
    assert all(c.inputs.potential.uuid == teacher.uuid for c in calcs)
    level = node.outputs.train_set.base.attributes.get('level_of_theory')
    assert level['engine'] == 'potential' and level['potential_uuid'] == teacher.uuid


def test_provenance_query_finds_exactly_the_fitted_labels(teacher_loop):
    """One QueryBuilder query from the final potential: every labelling CalcJob whose frames went into it, across
    the start data and all iterations, and none of the held-out set's."""
    node, start, test, _ = teacher_loop
    found = {calc.uuid for calc in labelling_calculations(node.outputs.potential)}
    fitted = {meta['source_uuid'] for meta in node.outputs.train_set.get_frameset().metadata}
    held_out = {meta['source_uuid'] for meta in test.get_frameset().metadata}
    assert found == fitted and not found & held_out
    labelled_in_loop = {meta['source_uuid'] for it in _iterations(node) if 'labels' in it.outputs
                        for meta in it.outputs.labels.get_frameset().metadata}  # fmt: skip
    assert labelled_in_loop and labelled_in_loop <= found


def test_report_table_figure_and_cli(teacher_loop):
    from click.testing import CliRunner

    from aiida_glassml.cli import cli

    node, _, _, _ = teacher_loop
    assert node.outputs.figure.get_content('rb').startswith(b'\x89PNG')
    text = node.outputs.report['text']
    assert text.splitlines()[0].split()[:2] == ['it', 'runs'] and len(text.splitlines()) == 3
    result = CliRunner().invoke(cli, ['active-learning', 'show', str(node.pk)])
    assert result.exit_code == 0, result.output
    assert 'stop reason:' in result.output and text.splitlines()[1] in result.output
    result = CliRunner().invoke(cli, ['active-learning', 'show', str(node.pk), '--json'])
    payload = json.loads(result.output)
    assert [row['iteration'] for row in payload['iterations']] == [1, 2]
    result = CliRunner().invoke(cli, ['active-learning', 'show', str(node.outputs.potential.pk)])
    assert result.exit_code == 1 and 'not an ActiveLearningWorkChain' in result.output
    reports = [line for line in orm.Log.collection.get_logs_for(node)]
    assert any('stop after iteration' in log.message for log in reports)


def test_a_rerun_with_caching_repeats_no_labelling(teacher_loop):
    """Seeds are fixed by the loop's settings, so the same loop rerun with caching on makes the same runs: every
    labelling CalcJob (and fit) comes from the cache instead of running again."""
    from aiida.manage.caching import enable_caching

    node, _, _, builder = teacher_loop
    with enable_caching():
        _, rerun = run_get_node(builder)
    assert rerun.exit_status == node.exit_status
    in_rerun = {c.uuid for c in rerun.called_descendants}
    labelling = [calc for calc in labelling_calculations(rerun.outputs.potential) if calc.uuid in in_rerun]
    assert labelling and all(calc.base.caching.is_created_from_cache for calc in labelling)
    fits = [c for c in rerun.called_descendants if c.process_label == 'PacemakerCalculation']
    assert fits and all(calc.base.caching.is_created_from_cache for calc in fits)
    assert rerun.outputs.potential.base.attributes.get('sha256_yaml') == \
        node.outputs.potential.base.attributes.get('sha256_yaml')


def test_a_finished_loop_can_be_continued(teacher_loop, al_codes, teacher, node_count):
    """A new loop starts from the outputs of the last one (potential with its active set, training and test sets)."""
    node, _, _, _ = teacher_loop
    before = node_count()
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        node.outputs.train_set, {'NaPO3': NAPO3}, potential=node.outputs.potential, test_set=node.outputs.test_set,
        md_code=al_codes['python'], label_code=al_codes['python'], pacemaker_code=al_codes['pacemaker'],
        label_engine='potential', label_potential=teacher, protocol='fast',
    )  # fmt: skip
    assert builder.potential.uuid == node.outputs.potential.uuid and builder.potential.has_active_set
    assert builder.dataset.uuid == node.outputs.train_set.uuid and node_count() == before
