"""One real active-learning iteration with real CP2K labels (closed-shell Na-P-O, `fast`): CP2K single points make the
starting data, pacemaker fits, ASE/pyace explores with gamma, pace_select selects, CP2K labels the selection, the up-fit
follows. The potential's provenance reaches every CP2K calculation whose frames it was fitted on."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.tools.provenance import labelling_calculations
from aiida_glassml.workflows.active_learning import ActiveLearningWorkChain
from aiida_glassml.workflows.label import LabelWorkChain

from .conftest import NAPO3, as_structures, failures, melt_frames, module_code

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def cp2k_loop(al_codes, tmp_path_factory, reference_potential_yaml):
    cp2k = module_code('cp2k', 'cp2k', tmp_path_factory.mktemp('al_cp2k'))
    frames = melt_frames(reference_potential_yaml, 3, n_atoms=20, seed=10, steps=40)  # 6 frames
    # the held-out frames are labelled on their own, so they never enter the potential's provenance
    labels, label_node = run_get_node(LabelWorkChain.get_builder_from_protocol(
        cp2k, as_structures(frames[:4], prefix='start'), engine='cp2k',
        mode='single_point', protocol='fast'))  # fmt: skip
    test, test_node = run_get_node(LabelWorkChain.get_builder_from_protocol(
        cp2k, as_structures(frames[-1:], prefix='test'), engine='cp2k',
        mode='single_point', protocol='fast'))  # fmt: skip
    assert label_node.is_finished_ok and test_node.is_finished_ok, (label_node.exit_message, test_node.exit_message)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        labels['training_set'], {'NaPO3': NAPO3}, test_set=test['training_set'], md_code=al_codes['python'],
        label_code=cp2k,
        pacemaker_code=al_codes['pacemaker'], label_engine='cp2k', protocol='fast',
        # one selected frame (one CP2K label), 10-iteration fits without parity plots: the CP2K labels are under test
        overrides={'settings': {'max_iterations': 1, 'max_select': 1},
                   'exploration': {'structure_settings': {'n_atoms': 20}, 'md': {'gamma_lo': 1.1}},
                   'stability': {'structure_settings': {'n_atoms': 20}, 'md': {'time': 0.02}},
                   'fit': {'make_plots': False, 'pacemaker': {'settings': {'maxiter': 10}}}},
    )  # fmt: skip
    _, node = run_get_node(builder)
    return node, label_node


def test_one_iteration_with_cp2k_labels(cp2k_loop):
    node, _ = cp2k_loop
    assert node.exit_status == ActiveLearningWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status, failures(node)
    report = node.outputs.report.get_dict()
    assert report['stop']['stop_reason'] == 'max_iterations'
    (row,) = report['rows']
    assert row['outcome'] == 'refitted' and row['runs'] == 1
    assert row['n_selected'] == 1 and row['n_labelled'] == row['n_selected']  # max_select bounds the selection
    assert node.outputs.train_set.n_frames == 4 + row['n_labelled']
    iteration = [c for c in node.called if c.process_label == 'ActiveLearningIterationWorkChain'][0]
    label = [c for c in iteration.called if c.process_label == 'LabelWorkChain'][0]
    assert label.inputs.engine.value == 'cp2k' and label.inputs.mode.value == 'single_point'


def test_potential_traces_back_to_every_cp2k_calculation(cp2k_loop):
    node, label_node = cp2k_loop
    potential = node.outputs.potential
    found = {calc.uuid for calc in labelling_calculations(potential)}
    fitted = {meta['source_uuid'] for meta in node.outputs.train_set.get_frameset().metadata}
    assert found == fitted
    start = {c.uuid for c in label_node.called_descendants if isinstance(c, orm.CalcJobNode)}
    assert len(found - start) == node.outputs.report['rows'][0]['n_labelled']
