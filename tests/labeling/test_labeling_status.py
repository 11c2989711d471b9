"""Honest labelling status: frames whose SCF stopped at its iteration limit are no labels (dropped, counted per
calculation in the report), and ``LabelWorkChain`` fails when more than ``max_failure_fraction`` of its structures
failed, keeping the partial training set.

The CP2K outputs are real CP2K 2023.1 runs of one water molecule (data/cp2k_scf_unconverged, inputs alongside): with
MAX_SCF 10 the SCF of the start (ATOMIC guess) does not converge and those of MD steps 1-4 do; with MAX_SCF 8 none
does. CP2K 2023.1 only warns and carries on, so before these checks such frames entered the training set."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ExitCode
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from plumpy import ProcessState

from aiida_glassml.labeling import cp2k as cp2k_labeling
from aiida_glassml.labeling import frames as frame_tools
from aiida_glassml.labeling import qe as qe_labeling
from aiida_glassml.workflows.label import LabelWorkChain, collect_training_set, too_many_failures

DATA = pathlib.Path(__file__).parent / 'data' / 'cp2k_scf_unconverged'


def _files(name: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in (DATA / name).iterdir() if not p.name.endswith('.inp')}


def _node(node, exit_code: ExitCode, caller=None):
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    if caller is not None:
        link = LinkType.CALL_CALC if isinstance(node, orm.CalcJobNode) else LinkType.CALL_WORK
        node.base.links.add_incoming(caller, link_type=link, link_label='iteration_01')
    return node.store()


def fake_calcjob(computer, entry_point: str, exit_code: ExitCode, files=None, outputs=None, caller=None, inputs=None):
    """A finished CalcJobNode (called by ``caller``) with a ``retrieved`` folder holding ``files`` and ``outputs``."""
    node = orm.CalcJobNode(computer=computer, process_type=f'aiida.calculations:{entry_point}')
    node.set_option('resources', {'num_machines': 1})
    for label, data in (inputs or {}).items():
        node.base.links.add_incoming(data.store(), link_type=LinkType.INPUT_CALC, link_label=label)
    _node(node, exit_code, caller)
    retrieved = orm.FolderData()
    for name, content in (files or {}).items():
        retrieved.base.repository.put_object_from_filelike(io.BytesIO(content.encode()), name)
    for label, output in {'retrieved': retrieved, **(outputs or {})}.items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    return node


def _plan(engine: str, calcs: dict, aimd: dict | None = None, **extra) -> dict:
    return {
        'engine': engine, 'mode': 'aimd', 'failed_workchains': {},
        'settings': {'aimd': aimd or {'temperature': 5000.0}, 'sample_type': None, 'iteration': None},
        'calculations': {
            key: {'structure': key.split('__')[0], 'order': int(key.split('__')[1]), 'pk': calc.pk, 'uuid': calc.uuid,
                  'exit_status': calc.exit_status, 'exit_message': calc.exit_message,
                  'finished_ok': calc.exit_status == 0, 'sources': sources}
            for key, (calc, sources) in calcs.items()
        },
        **extra,
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------ CP2K
def test_cp2k_scf_convergence_of_every_md_step():
    start = _files('md_start')['aiida.out']
    assert cp2k_labeling.parse_scf_convergence(start) == [(None, False)] + [(step, True) for step in range(1, 5)]
    assert cp2k_labeling.unconverged_md_steps(start) == {0}
    every = _files('md_all')['aiida.out']
    assert cp2k_labeling.unconverged_md_steps(every) == {0, 1, 2, 3, 4}
    # A restarted run (steps 7, 8 numbered): its unnumbered start is step 6.
    restarted = every.replace('Step number                                                               1', 'Step number 7')
    restarted = restarted.replace('Step number                                                               2', 'Step number 8')
    assert {6, 7, 8} <= cp2k_labeling.unconverged_md_steps(restarted)


def test_cp2k_frames_say_whether_their_scf_converged():
    frames = cp2k_labeling.frames_from_cp2k(_files('md_start'), 'aimd')
    assert [f['metadata']['step'] for f in frames] == [0, 1, 2, 3, 4]
    assert [f['scf_converged'] for f in frames] == [False, True, True, True, True]
    structure = {'symbols': ['O', 'H', 'H'], 'positions': np.zeros((3, 3)), 'cell': np.eye(3) * 5}
    (single,) = cp2k_labeling.frames_from_cp2k(_files('single_point'), 'single_point', structure)
    assert single['scf_converged'] is False
    assert np.abs(single['forces']).max() > 0  # the frame is complete: only the flag says it is no label


def test_unconverged_cp2k_frames_are_dropped_and_counted(aiida_localhost):
    from aiida_glassml.workflows.dft_base import Cp2kCalculation

    good = fake_calcjob(aiida_localhost, 'cp2k', ExitCode(0), _files('md_start'))
    bad = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE, _files('md_all'))
    plan = _plan('cp2k', {'water__00': (good, ['retrieved']), 'ice__00': (bad, ['retrieved'])},
                 structures=['ice', 'water'], max_failure_fraction=0.0)  # fmt: skip
    results = collect_training_set(plan=orm.Dict(plan), water__00__retrieved=good.outputs.retrieved,
                                   ice__00__retrieved=bad.outputs.retrieved)  # fmt: skip
    frames = results['training_set'].get_frameset()
    energies = [frame['energy'] for frame in cp2k_labeling.frames_from_cp2k(_files('md_start'), 'aimd')]
    np.testing.assert_allclose(frames.energy, energies[1:])  # steps 1-4; the unconverged start is gone
    report = results['report'].get_dict()
    assert report['unconverged_scf_steps'] == {'water__00': [0], 'ice__00': [0, 1, 2, 3, 4]}
    assert report['n_unconverged_scf'] == 6
    assert report['frames_per_calculation'] == {'water__00': 4, 'ice__00': 0}
    # `ice` gave no label: a failed structure, its CalcJob in `failed` with no frame kept.
    assert report['failed_structures'] == ['ice'] and report['n_structures'] == 2
    assert report['failure_fraction'] == pytest.approx(0.5)
    (failure,) = report['failed']
    assert failure['uuid'] == bad.uuid and failure['frames_kept'] == 0


# ------------------------------------------------------------------------------------------------ QE
def test_qe_scf_converged_per_step():
    arrays = {'scf_iterations': [12, 80, 80, 7]}
    assert qe_labeling.scf_converged_per_step(arrays, 4, 80, 1e-6) == [True, False, False, True]
    # pw.x's accuracy of each iteration (eV): the third step converged at its very last iteration.
    ry = qe_labeling.HARTREE_TO_EV / 2
    accuracy = [1.0] * 12 + [1e-3] * 80 + [1e-3] * 79 + [0.5e-6 * ry] + [1.0] * 7
    arrays['scf_accuracy'] = accuracy
    assert qe_labeling.scf_converged_per_step(arrays, 4, 80, 1e-6) == [True, False, True, True]
    assert qe_labeling.scf_converged_per_step({'scf_iterations': [3]}, 2, 80, 1e-6) is None  # not step by step


def _pw_trajectory(first_step: int, iterations: list[int]) -> orm.TrajectoryData:
    """pw.x MD output of two atoms from global step ``first_step``, one force evaluation per ``iterations`` entry
    (its SCF iterations); positions and energy encode the global step."""
    steps = np.arange(first_step, first_step + len(iterations))
    positions = np.array([[[0.0, 0.0, 0.0], [1.6, 0.0, 0.0]]]) + 0.01 * steps[:, None, None]
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(['Si', 'O'], positions, cells=np.tile(np.eye(3) * 5.0, (len(steps), 1, 1)))
    trajectory.set_array('energy', -1.0 * steps)
    trajectory.set_array('forces', np.ones((len(steps), 2, 3)))
    trajectory.set_array('scf_iterations', np.array(iterations))
    return trajectory


def test_unconverged_qe_steps_are_dropped_and_a_converged_repeat_is_kept(aiida_localhost):
    """Steps 0-4, then a restart that evaluates step 4 again (from its positions) with robust SCF settings. Step 2 and
    the first copy of step 4 hit electron_maxstep (30): step 2 is dropped, step 4 comes from the restart."""
    pw_input = orm.Dict({'ELECTRONS': {'electron_maxstep': 30, 'conv_thr': 1e-6}})
    first = fake_calcjob(aiida_localhost, 'quantumespresso.pw', ExitCode(0), inputs={'parameters': pw_input},
                         outputs={'output_trajectory': _pw_trajectory(0, [10, 9, 30, 8, 30])})  # fmt: skip
    restart_input = orm.Dict({'ELECTRONS': {'electron_maxstep': 30, 'conv_thr': 1e-6, 'mixing_beta': 0.2}})
    second = fake_calcjob(aiida_localhost, 'quantumespresso.pw', ExitCode(0), inputs={'parameters': restart_input},
                          outputs={'output_trajectory': _pw_trajectory(4, [20, 9, 8])})  # fmt: skip
    from aiida_glassml.workflows.label import frame_sources

    sources, calcs = {}, {}
    for order, calc in enumerate((first, second)):
        nodes = frame_sources('qe', calc)
        assert set(nodes) == {'output_trajectory', 'input_parameters'}
        calcs[f'sio__{order:02d}'] = (calc, sorted(nodes))
        sources.update({f'sio__{order:02d}__{name}': node for name, node in nodes.items()})
    plan = _plan('qe', calcs, aimd={'temperature': 5000.0, 'sample_every': 1}, structures=['sio'])
    results = collect_training_set(plan=orm.Dict(plan), **sources)
    frames = results['training_set'].get_frameset()
    assert frames.energy.tolist() == [0.0, -1.0, -3.0, -4.0, -5.0, -6.0]  # energy = -(global step)
    assert [m['source_uuid'] for m in frames.metadata] == [first.uuid] * 3 + [second.uuid] * 3
    report = results['report'].get_dict()
    assert report['unconverged_scf_steps'] == {'sio__00': [2]} and report['n_unconverged_scf'] == 1
    assert report['failed_structures'] == [] and report['failure_fraction'] == 0.0


def test_unique_steps_prefers_a_converged_copy():
    first = [{'metadata': {'step': 0}, 'scf_converged': True}, {'metadata': {'step': 1}, 'scf_converged': False}]
    second = [{'metadata': {'step': 1}, 'scf_converged': True, 'id': 'restart'}, {'metadata': {'step': 2}}]
    frames = frame_tools.unique_steps([first, second])
    assert [f['metadata']['step'] for f in frames] == [0, 1, 2] and frames[1].get('id') == 'restart'
    kept, dropped = frame_tools.split_unconverged([*first, {'metadata': {'step': 3}}])
    assert [f['metadata']['step'] for f in kept] == [0, 3] and [f['metadata']['step'] for f in dropped] == [1]
    assert all('scf_converged' not in f for f in kept + dropped)


# ------------------------------------------------------------------------------------------------ work chain status
def test_too_many_failures():
    assert not too_many_failures(0, 4, 0.0)
    assert too_many_failures(1, 4, 0.0)  # the default: any failure
    assert not too_many_failures(1, 4, 0.25) and too_many_failures(2, 4, 0.25)
    assert not too_many_failures(4, 4, 1.0)


@pytest.fixture
def water_structures(aiida_profile):
    symbols = ['O', 'H', 'H']
    positions = [[0.0, 0.0, 0.0], [0.76, 0.59, 0.0], [-0.76, 0.59, 0.0]]
    structures = {}
    for label in ('ice', 'water'):
        structure = orm.StructureData(cell=np.eye(3) * 5.0)
        for symbol, position in zip(symbols, positions):
            structure.append_atom(position=position, symbols=symbol)
        structures[label] = structure
    return structures


@pytest.mark.parametrize('max_failure_fraction', [None, 0.5])
def test_label_workchain_fails_when_too_many_structures_failed(aiida_localhost, water_structures,
                                                              max_failure_fraction):  # fmt: skip
    """Two CP2K structures: `water`'s base work chain finished with frames, `ice`'s failed after its CalcJob wrote only
    unconverged steps. By default (0: any failure) the work chain exits 301, with the partial training set and the
    report; allowing half the structures to fail it finishes OK with the same outputs."""
    from aiida_glassml.workflows.dft_base import Cp2kCalculation, LabelCp2kBaseWorkChain

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='fake-cp2k').store()
    builder = LabelWorkChain.get_builder_from_protocol(code, water_structures, engine='cp2k', protocol='fast')
    inputs = dict(builder._inputs(prune=True))
    if max_failure_fraction is not None:
        inputs['max_failure_fraction'] = orm.Float(max_failure_fraction)
    process = instantiate_process(get_manager().get_runner(), LabelWorkChain, **inputs)
    process.setup()
    exit_codes = LabelCp2kBaseWorkChain.exit_codes
    for label, files, status in (('water', 'md_start', ExitCode(0)),
                                 ('ice', 'md_all', exit_codes.ERROR_SCF_NOT_CONVERGED_AFTER_ROBUST_SETTINGS)):
        workchain = _node(orm.WorkChainNode(process_type='aiida.workflows:glassml.label_cp2k_base'), status)
        calc_status = ExitCode(0) if status.status == 0 else Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED
        fake_calcjob(aiida_localhost, 'cp2k', calc_status, _files(files), caller=workchain)
        process.ctx[f'label_{label}'] = workchain  # fmt: skip
    result = process.collect_frames()
    outputs = process.outputs
    assert outputs['training_set'].n_frames == 4  # water's steps 1-4, kept either way
    report = outputs['report'].get_dict()
    assert report['failed_structures'] == ['ice'] and report['n_unconverged_scf'] == 6
    assert {f['what'].split('<')[0] for f in report['failed']} == {'CalcJob', 'WorkChain'}
    if max_failure_fraction is None:
        assert result.status == 301 and result == LabelWorkChain.exit_codes.ERROR_TOO_MANY_FAILED_STRUCTURES.format(
            failed=1, total=2, limit=0.0)  # fmt: skip
        assert '1 of 2 structures failed' in result.message
    else:
        assert result is None and report['max_failure_fraction'] == 0.5


def test_max_failure_fraction_is_a_fraction():
    spec = LabelWorkChain.spec()
    assert spec.inputs['max_failure_fraction'].validate(orm.Float(1.5)) is not None
    assert spec.inputs['max_failure_fraction'].validate(orm.Float(0.3)) is None
