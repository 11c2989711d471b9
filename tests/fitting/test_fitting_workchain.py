"""PacemakerCalculation + FitAceWorkChain: a real (tiny) pacemaker fit, its active set, restart handling and bad
input. The fit uses the `fast` protocol on 30 published DFT frames (~1 minute on two shared cores)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node

from aiida_glassml.calculations.pacemaker import PacemakerCalculation
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.data import AcePotentialData, TrainingSetData
from aiida_glassml.fitting.evaluate import predict
from aiida_glassml.fitting.input_yaml import without_core_repulsion
from aiida_glassml.fitting.settings import FitSettingsError
from aiida_glassml.protocols import ProtocolError
from aiida_glassml.workflows.fit_ace import FitAceWorkChain

_CACHE: dict = {}


@pytest.fixture
def pace_codes(installed_code):
    return {
        'code': installed_code('pacemaker', 'glassml.pacemaker'),
        'yaml2yace_code': installed_code('pace_yaml2yace', 'core.shell'),
        'activeset_code': installed_code('pace_activeset', 'core.shell'),
    }


@pytest.fixture
def small_dataset(small_frames):
    if 'dataset' not in _CACHE:
        _CACHE['dataset'] = TrainingSetData(small_frames, label='nafepo4-30').store()
    return _CACHE['dataset']


@pytest.fixture
def fitted(pace_codes, small_dataset, python_code):
    """Run FitAceWorkChain (fast protocol) once for this module (the parity plots run on ``python_code``)."""
    if 'node' not in _CACHE:
        builder = FitAceWorkChain.get_builder_from_protocol(pace_codes['code'], small_dataset, protocol='fast')
        _, node = run_get_node(builder)
        _CACHE['node'] = node
    return _CACHE['node']


@pytest.mark.slow
def test_fit_outputs(fitted, small_dataset, data_regression):
    assert fitted.is_finished_ok, fitted.exit_status
    calc = _pacemaker_calcs(fitted)[-1]
    potential = fitted.outputs.potential
    assert potential.has_active_set
    assert potential.elements and sorted(potential.elements) == small_dataset.elements
    names = potential.base.repository.list_object_names()
    assert {'potential.yaml', 'potential.yace', 'potential.asi'} <= set(names)
    metrics = fitted.outputs.metrics.get_dict()
    assert metrics == potential.metrics
    for split in ('train', 'test'):
        for key in ('energy_mae', 'energy_rmse', 'force_mae', 'force_rmse'):
            value = metrics[f'{split}_{key}']
            assert np.isfinite(value) and value > 0
        assert metrics[f'{split}_energy_rmse'] >= metrics[f'{split}_energy_mae']
    assert metrics['train_n_frames'] + metrics['test_n_frames'] == small_dataset.n_frames
    assert 0 < metrics['n_functions'] <= 4 * 10
    assert 1 <= metrics['n_iterations'] <= 5
    # the log and pacemaker's metrics files are kept
    retrieved = set(calc.outputs.retrieved.base.repository.list_object_names())
    assert {'log.txt', 'metrics.txt', 'test_metrics.txt', 'input.yaml', 'interim_potential_0.yaml'} <= retrieved
    # the metrics in the Dict are those of an independent pyace evaluation of the stored potential
    train = fitted.outputs.train_set.get_frameset()
    paths = potential._cached_files()
    from aiida_glassml.fitting.evaluate import evaluate

    ours, _ = evaluate(paths['yaml'], train)
    assert ours['energy_mae'] == pytest.approx(metrics['train_energy_mae'], rel=1e-3)
    assert ours['force_mae'] == pytest.approx(metrics['train_force_mae'], rel=1e-3)
    data_regression.check({
        'split': [metrics['train_n_frames'], metrics['test_n_frames']],
        'functions_per_element': metrics['n_functions_per_element'],
        'outputs': sorted(fitted.outputs),
    })  # fmt: skip


@pytest.mark.slow
def test_parity_plots_link_to_their_data(fitted):
    for name in ('energy_parity', 'force_parity'):
        figure = fitted.outputs[name]
        assert figure.get_content(mode='rb')[:8] == b'\x89PNG\r\n\x1a\n'
        creator = figure.creator
        assert creator.process_type.endswith('glassml.evaluate_potential') and creator.is_finished_ok
        inputs = {link.link_label: link.node.uuid for link in creator.base.links.get_incoming().all()}
        assert inputs['potential'] == fitted.outputs.potential.uuid
        assert inputs['training_set'] == fitted.outputs.train_set.uuid
        assert inputs['dataset'] == fitted.outputs.test_set.uuid


@pytest.mark.slow
def test_active_set_gamma(fitted):
    """MaxVol: gamma <= tolerance (1.01) on the environments the active set was built from (the fast protocol uses
    all training atoms), far above it on strongly compressed frames."""
    potential = fitted.outputs.potential
    paths = potential._cached_files()
    train = fitted.outputs.train_set.get_frameset()
    gamma_train = predict(paths['yaml'], train, asi_path=paths['asi'])['gamma']
    assert gamma_train.shape == (int(train.n_atoms.sum()),)
    assert gamma_train.max() <= 1.01 + 1e-6
    atoms_list = train.select([0, 1]).to_atoms()
    for atoms in atoms_list:
        atoms.set_cell(atoms.cell * 0.7, scale_atoms=True)
    compressed = FrameSet.from_atoms(atoms_list)
    gamma_far = predict(paths['yaml'], compressed, asi_path=paths['asi'])['gamma']
    assert gamma_far.max() > 5.0
    # the same grade through the node's calculator
    calc = potential.get_calculator()
    atoms = compressed.to_atoms()[0]
    atoms.calc = calc
    atoms.get_potential_energy()
    assert np.max(calc.results['gamma']) == pytest.approx(gamma_far[: len(atoms)].max())


def _metrics_rows(calc) -> list[dict]:
    """pacemaker's metrics.txt of a finished PacemakerCalculation as rows {column: value}."""
    text = calc.outputs.retrieved.base.repository.get_object_content('metrics.txt')
    lines = [line.split() for line in text.splitlines() if line.strip()]
    return [dict(zip(lines[0], map(float, row))) for row in lines[1:]]


def _pacemaker_calcs(workchain) -> list:
    """The work chain's PacemakerCalculation jobs, oldest first (the parity-plot job is not one)."""
    calcs = workchain.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes()
    return sorted((n for n in calcs if n.process_class is PacemakerCalculation), key=lambda n: n.ctime)


@pytest.fixture
def extra_frames(reference_frames, small_frames):
    """10 more published frames (moderate forces) that are not among the 30 of `small_frames`."""
    off = reference_frames.offsets
    known = set(np.round(small_frames.energy, 6))
    fresh = [i for i in range(reference_frames.n_frames)
             if np.abs(reference_frames.forces[off[i] : off[i + 1]]).max() < 15.0
             and round(float(reference_frames.energy[i]), 6) not in known]  # fmt: skip
    return reference_frames.select(fresh[:10])


def _upfit(pace_codes, earlier, dataset, test_set=None):
    """FitAceWorkChain (fast, one BFGS iteration) continuing from ``earlier``; returns (work chain, its job)."""
    builder = FitAceWorkChain.get_builder_from_protocol(
        pace_codes['code'], dataset, protocol='fast', initial_potential=earlier, test_set=test_set,
        overrides={'make_plots': False, 'pacemaker': {'settings': {'maxiter': 1}}},
    )  # fmt: skip
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_status
    return node, _pacemaker_calcs(node)[-1]


@pytest.mark.slow
def test_upfit_on_same_data_starts_where_first_fit_ended(fitted, pace_codes):
    """Same train/test frames, the earlier potential's coefficients and reference energies (energy zero): pacemaker's
    first loss of the up-fit is the loss the first fit ended at."""
    _, calc = _upfit(pace_codes, fitted.outputs.potential, fitted.outputs.train_set, fitted.outputs.test_set)
    first_end = _metrics_rows(_pacemaker_calcs(fitted)[-1])[-1]['loss']
    start = _metrics_rows(calc)[0]
    assert start['iter_num'] == 0
    assert start['loss'] <= 1.5 * first_end
    assert start['loss'] == pytest.approx(first_end, rel=1e-3)


@pytest.mark.slow
def test_upfit_from_earlier_potential(fitted, pace_codes, small_frames, extra_frames):
    """The dataset has grown by 10 frames: the up-fit trains on more frames and starts from the earlier potential's
    basis and coefficients as the bare ACE expansion they were fitted as (its ZBL core switched off), so it starts
    near the first fit's final loss and keeps training."""
    grown = TrainingSetData(FrameSet.concatenate([small_frames, extra_frames])).store()
    assert grown.n_frames == small_frames.n_frames + 10
    earlier = fitted.outputs.potential
    node, calc = _upfit(pace_codes, earlier, grown)
    assert 'energy_parity' not in node.outputs
    assert calc.inputs.initial_potential.uuid == earlier.uuid
    # the job's input folder holds the earlier potential, coefficients and all, without the core repulsion
    earlier_text = earlier.base.repository.get_object_content(AcePotentialData.YAML)
    written = calc.base.repository.get_object_content('initial_potential.yaml')
    assert 'inner_cutoff_type: zbl' in earlier_text and 'inner_cutoff_type: zbl' not in written
    assert written == without_core_repulsion(earlier_text)
    assert 'potential: initial_potential.yaml' in calc.base.repository.get_object_content('input.yaml')
    # more training frames than the first fit (same seeded 20% split of a larger set)
    first = fitted.outputs.metrics.get_dict()
    assert node.outputs.metrics['train_n_frames'] > first['train_n_frames']
    assert node.outputs.metrics['train_n_frames'] + node.outputs.metrics['test_n_frames'] == grown.n_frames
    assert node.outputs.potential.base.attributes.get('functions_per_element') == \
        earlier.base.attributes.get('functions_per_element')  # fmt: skip
    # pacemaker puts a new core, at the grown data's shortest bonds, on the result
    assert 'inner_cutoff_type: zbl' in node.outputs.potential.base.repository.get_object_content(AcePotentialData.YAML)
    # with the old core left on, the extra frames' close contacts made the first loss ~17x the first fit's final
    # loss (16.6 vs 0.95, nearly all from forces); without it, only the unseen frames' errors add (~1.6x)
    first_end = _metrics_rows(_pacemaker_calcs(fitted)[-1])[-1]['loss']
    rows = _metrics_rows(calc)
    assert rows[0]['iter_num'] == 0
    assert rows[0]['loss'] < 2.0 * first_end
    assert rows[-1]['loss'] < rows[0]['loss']  # it trains


_STOP_AFTER_FIRST_INTERIM = """#!/bin/bash
# pacemaker, killed (SIGKILL) as soon as it writes its first interim potential; only on the first call (marker file)
if [ -e "{marker}" ]; then exec "{pacemaker}" "$@"; fi
touch "{marker}"
"{pacemaker}" "$@" &
pid=$!
while kill -0 $pid 2>/dev/null && [ ! -s interim_potential_0.yaml ]; do sleep 0.05; done
sleep 0.2
kill -KILL $pid 2>/dev/null
wait $pid
"""


@pytest.mark.slow
def test_interrupted_fit_restarts_from_interim_potential(pace_codes, small_frames, aiida_localhost, tmp_path):
    """A real pacemaker run killed after its first interim potential (exit 400 with `interim_potential`); the work
    chain restarts from that interim potential and finishes OK."""
    from aiida_glassml.tools.setup import find_executable

    wrapper = tmp_path / 'pacemaker-killed-once'
    wrapper.write_text(_STOP_AFTER_FIRST_INTERIM.format(marker=tmp_path / 'killed', pacemaker=find_executable('pacemaker')))
    wrapper.chmod(0o755)
    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable=str(wrapper), label='pacemaker-killed-once',
                             default_calc_job_plugin='glassml.pacemaker').store()  # fmt: skip
    dataset = TrainingSetData(small_frames.select(range(12))).store()
    builder = FitAceWorkChain.get_builder_from_protocol(
        code, dataset, protocol='fast', yaml2yace_code=pace_codes['yaml2yace_code'],
        activeset_code=pace_codes['activeset_code'],
        overrides={'make_plots': False, 'pacemaker': {'settings': {'maxiter': 12, 'early_stopping_patience': 12}}},
    )  # fmt: skip
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_status
    first, second = _pacemaker_calcs(node)
    assert first.exit_status == PacemakerCalculation.exit_codes.ERROR_FIT_INTERRUPTED.status
    assert 'potential' not in first.outputs
    interim = first.outputs.interim_potential
    assert second.inputs.initial_potential.uuid == interim.uuid
    assert second.inputs.settings['upfit'] == 'continue'
    assert second.base.repository.get_object_content('initial_potential.yaml', mode='rb') == \
        interim.base.repository.get_object_content(AcePotentialData.YAML, mode='rb')  # fmt: skip
    assert second.is_finished_ok and node.outputs.potential.has_active_set
    # the restart continued from the interim coefficients: it starts below the interrupted run's own start
    assert _metrics_rows(second)[0]['loss'] < _metrics_rows(first)[0]['loss']


def _failed_child(exit_code, with_interim: bool, potential=None):
    """A finished PacemakerCalculation node with a restartable exit code (no real job)."""
    node = orm.CalcJobNode(process_type='aiida.calculations:glassml.pacemaker')
    node.set_process_state('finished')
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    node.store()
    if with_interim:
        potential.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='interim_potential')
        potential.store()
    node.seal()
    return node


def test_restart_handler_uses_interim_potential(reference_potential_yaml, small_frames, installed_code):
    """handle_interrupted_fit puts the child's interim potential as the next initial_potential; a child with none is
    unrecoverable; 3xx exit codes stop the work chain."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    codes = {
        'code': installed_code('pacemaker', 'glassml.pacemaker'),
        'yaml2yace_code': installed_code('pace_yaml2yace', 'core.shell'),
        'activeset_code': installed_code('pace_activeset', 'core.shell'),
    }
    dataset = TrainingSetData(small_frames)
    builder = FitAceWorkChain.get_builder_from_protocol(codes['code'], dataset, protocol='fast')
    process = instantiate_process(get_manager().get_runner(), builder)
    process.setup()
    exit_codes = PacemakerCalculation.exit_codes

    interim = AcePotentialData(yaml=reference_potential_yaml)
    child = _failed_child(exit_codes.ERROR_FIT_INTERRUPTED, True, interim)
    report = process.handle_interrupted_fit(child)
    assert report.do_break and report.exit_code.status == 0
    assert process.ctx.inputs.initial_potential.uuid == interim.uuid
    assert process.ctx.inputs.settings['upfit'] == 'continue'  # the fast protocol has no ladder

    bare = _failed_child(exit_codes.ERROR_OUT_OF_WALLTIME, False)
    report = process.handle_interrupted_fit(bare)
    assert report.exit_code == process.exit_codes.ERROR_UNRECOVERABLE_FAILURE

    broken = _failed_child(exit_codes.ERROR_INSUFFICIENT_ENVIRONMENTS, False)
    report = process.handle_unrecoverable(broken)
    assert report.exit_code.status == 300


@pytest.mark.parametrize(
    ('overrides', 'error', 'message'),
    [
        ({'pacemaker': {'settings': {'elements': ['Na', 'P', 'O']}}}, FitSettingsError, "only in data: ['Fe']"),
        ({'pacemaker': {'settings': {'test_fraction': 1.2}}}, FitSettingsError, 'strictly between 0 and 1'),
        ({'pacemaker': {'settings': {'embedding': 'Pauli'}}}, FitSettingsError, 'unknown embedding (npot)'),
        ({'pacemaker': {'settings': {'kappa': 2}}}, FitSettingsError, 'kappa must be in [0, 1]'),
        ({'pacemaker': {'settings': {'number_of_functions_per_element': 900}}}, FitSettingsError,
         'smaller than its number of basis functions'),
        ({'pacemaker': {'settings': {'number_of_functions_per_element': 400}}}, FitSettingsError,
         'Insufficient atomic environments'),
        ({'pacemaker': {'settings': {'kapa': 0.1}}}, ProtocolError, 'unknown override key `pacemaker.settings.kapa`'),
    ],
)  # fmt: skip
def test_bad_input_raises_before_storing(pace_codes, small_frames, node_count, overrides, error, message):
    dataset = TrainingSetData(small_frames)  # unstored
    before = node_count()
    with pytest.raises(error) as info:
        FitAceWorkChain.get_builder_from_protocol(pace_codes['code'], dataset, protocol='fast', overrides=overrides)
    assert message in str(info.value)
    assert node_count() == before


def test_upfit_too_large_initial_basis_raises_before_storing(pace_codes, small_frames, reference_potential_yaml,
                                                            reference_potential_yace, node_count):  # fmt: skip
    """`fast` asks for 10 functions per element, but an up-fit continues the initial potential's 248: 12 frames hold
    too few Fe environments for that basis (pace_activeset would fail after the fit), so the builder refuses."""
    dataset = TrainingSetData(small_frames.select(range(12)))  # unstored
    initial = AcePotentialData(yaml=reference_potential_yaml, yace=reference_potential_yace)  # unstored
    assert initial.base.attributes.get('functions_per_element')['Fe'] == 248
    before = node_count()
    FitAceWorkChain.get_builder_from_protocol(pace_codes['code'], dataset, protocol='fast')  # fine from scratch
    with pytest.raises(FitSettingsError, match='Insufficient atomic environments') as info:
        FitAceWorkChain.get_builder_from_protocol(pace_codes['code'], dataset, protocol='fast',
                                                  initial_potential=initial)  # fmt: skip
    assert '248 functions per element' in str(info.value)
    assert 'up-fit from a potential with fewer functions' in str(info.value)
    assert node_count() == before


def test_calcjob_validator_rejects_bad_input(pace_codes, small_frames, node_count):
    """Submitting the CalcJob directly: the input validator names the problem; nothing is stored."""
    from aiida.engine import run

    builder = PacemakerCalculation.get_builder()
    builder.update(pace_codes)
    builder.train = TrainingSetData(small_frames.select(range(3)))
    builder.settings = orm.Dict({'number_of_functions_per_element': 250})
    before = node_count()
    with pytest.raises(ValueError, match='smaller than its number of basis functions'):
        run(builder)
    with pytest.raises(ValueError, match='strictly between 0 and 1'):  # the settings port checks on assignment
        builder.settings = orm.Dict({'number_of_functions_per_element': 5, 'test_fraction': 0})
    assert node_count() == before
