"""Handlers of the labelling base work chains, each with a fake failed child carrying the exit code it handles
(the aiida-quantumespresso test style: instantiate the work chain, put a finished CalcJobNode in ``ctx.children``,
call the handler and check the report and the inputs of the next run)."""

from __future__ import annotations

import io
import pathlib

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ProcessHandlerReport
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from plumpy import ProcessState

from aiida_glassml.labeling import cp2k as cp2k_labeling
from aiida_glassml.workflows.dft_base import (
    Cp2kCalculation, LabelCp2kBaseWorkChain, LabelPwBaseWorkChain, PwCalculation,
)  # fmt: skip

DATA = pathlib.Path(__file__).parent / 'data'
MD_STDOUT = ' MD| Step number      3\n  Total energy:   -405.8\n'
SCF_ABORT = 'SCF run NOT converged. To continue the calculation regardless, please set IGNORE_CONVERGENCE_FAILURE\n'


@pytest.fixture
def fake_code(aiida_localhost):
    return orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='fake').store()


def fake_calcjob(computer, entry_point: str, exit_code, files: dict[str, str] | None = None, outputs=None):
    """A finished CalcJobNode with ``exit_code``, a ``retrieved`` folder holding ``files`` and a ``remote_folder``."""
    node = orm.CalcJobNode(computer=computer, process_type=f'aiida.calculations:{entry_point}')
    node.set_option('resources', {'num_machines': 1})
    node.set_option('output_filename', 'aiida.out')
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_code.status)
    node.set_exit_message(exit_code.message)
    node.store()
    retrieved = orm.FolderData()
    for name, content in (files or {}).items():
        retrieved.base.repository.put_object_from_filelike(io.BytesIO(content.encode()), name)
    remote = orm.RemoteData(computer=computer, remote_path='/tmp/fake-calc')
    for label, output in {'retrieved': retrieved, 'remote_folder': remote, **(outputs or {})}.items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    return node


@pytest.fixture
def cp2k_workchain(fake_code, napo3_structure):
    def factory(mode: str = 'aimd', settings: dict | None = None):
        protocol = {'cutoff': 200, 'basis': 'SZV', 'scf': {'method': 'ot'}, **(settings or {})}
        md = {'steps': 4, 'timestep': 2.0, 'temperature': 5000.0, 'sample_every': 2}
        parameters = cp2k_labeling.build_cp2k_parameters(
            napo3_structure.get_ase().get_chemical_symbols(), protocol, mode, md
        )
        inputs = {'cp2k': {'code': fake_code, 'structure': napo3_structure, 'parameters': orm.Dict(parameters),
                           'metadata': {'options': {'resources': {'num_machines': 1}}}}}  # fmt: skip
        process = instantiate_process(get_manager().get_runner(), LabelCp2kBaseWorkChain, **inputs)
        process.setup()
        return process

    return factory


def test_cp2k_scf_not_converged_switches_to_smearing_and_restarts_from_wavefunction(cp2k_workchain, aiida_localhost):
    process = cp2k_workchain()
    calc = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED,
                        {'aiida.out': MD_STDOUT + SCF_ABORT + ' ABORT\n'})  # fmt: skip
    process.ctx.children = [calc]
    result = process.handle_scf_not_converged(calc)
    assert isinstance(result, ProcessHandlerReport) and result.do_break and result.exit_code.status == 0
    parameters = process.ctx.inputs.parameters.get_dict()
    scf = parameters['FORCE_EVAL']['DFT']['SCF']
    assert 'OT' not in scf and scf['MIXING']['METHOD'] == 'BROYDEN_MIXING'
    assert scf['SMEAR']['METHOD'] == 'FERMI_DIRAC'
    assert scf['SCF_GUESS'] == 'RESTART'
    assert parameters['FORCE_EVAL']['DFT']['RESTART_FILE_NAME'] == './parent_calc/aiida-RESTART.wfn'
    assert parameters['EXT_RESTART']['RESTART_FILE_NAME'] == './parent_calc/aiida-1.restart'  # MD continues
    assert process.ctx.inputs.parent_calc_folder.uuid == calc.outputs.remote_folder.uuid

    # A second failure halves the mixing and doubles the smearing temperature.
    alpha, temperature = scf['MIXING']['ALPHA'], scf['SMEAR']['ELECTRONIC_TEMPERATURE']
    result = process.handle_scf_not_converged(calc)
    scf = process.ctx.inputs.parameters.get_dict()['FORCE_EVAL']['DFT']['SCF']
    assert scf['MIXING']['ALPHA'] == pytest.approx(alpha / 2)
    assert scf['SMEAR']['ELECTRONIC_TEMPERATURE'] == pytest.approx(temperature * 2)


def test_cp2k_scf_not_converged_gives_up_at_tiny_mixing(cp2k_workchain, aiida_localhost):
    process = cp2k_workchain(settings={'scf': {'method': 'diag', 'mixing_alpha': 0.01}})
    calc = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED,
                        {'aiida.out': SCF_ABORT})  # fmt: skip
    result = process.handle_scf_not_converged(calc)
    assert result.do_break
    assert result.exit_code == process.exit_codes.ERROR_SCF_NOT_CONVERGED_AFTER_ROBUST_SETTINGS
    # Terminal, so in the 3xx range, and distinct from BaseRestartWorkChain's and aiida-cp2k's codes.
    assert 300 <= result.exit_code.status < 400
    statuses = [code.status for code in process.spec().exit_codes.values()]
    assert statuses.count(result.exit_code.status) == 1


def test_cp2k_walltime_restarts(cp2k_workchain, aiida_localhost):
    process = cp2k_workchain()
    calc = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
                        {'aiida.out': MD_STDOUT + ' exceeded requested execution time\n'})  # fmt: skip
    result = process.handle_out_of_walltime(calc)
    assert result.do_break and result.exit_code.status == 0
    parameters = process.ctx.inputs.parameters.get_dict()
    assert parameters['EXT_RESTART']['RESTART_COUNTERS'] is True
    # CP2K runs STEPS more steps from the restart's step: 4 asked, 3 done, 1 to go (and 4 still the total after it)
    assert parameters['MOTION']['MD']['STEPS'] == 1 and process.ctx.md_total_steps == 4
    assert parameters['FORCE_EVAL']['DFT']['SCF']['SCF_GUESS'] == 'RESTART'
    assert 'OT' in parameters['FORCE_EVAL']['DFT']['SCF']  # SCF settings untouched
    assert process.ctx.inputs.parent_calc_folder.uuid == calc.outputs.remote_folder.uuid


def test_cp2k_md_stopped_early_continues(cp2k_workchain, aiida_localhost):
    process = cp2k_workchain()
    files = {p.name: p.read_text() for p in (DATA / 'cp2k_md_stopped').iterdir()}
    calc = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE, files)
    result = process.handle_md_stopped_early(calc)
    assert result.do_break and result.exit_code.status == 0
    assert 'EXT_RESTART' in process.ctx.inputs.parameters.get_dict()


def test_cp2k_md_stopped_before_any_scf_gives_up(cp2k_workchain, aiida_localhost):
    process = cp2k_workchain()
    calc = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE,
                        {'aiida.out': ' CP2K| version string: CP2K version 2023.1\n'})  # fmt: skip
    result = process.handle_md_stopped_early(calc)
    assert result.do_break and result.exit_code == process.exit_codes.NO_RESTART_DATA


def test_frames_of_stopped_md_are_kept(aiida_localhost):
    """A failed CalcJob's complete frames go into the training set and the failure into the report."""
    from aiida_glassml.workflows.label import collect_training_set

    files = {p.name: p.read_text() for p in (DATA / 'cp2k_md_stopped').iterdir()}
    calc = fake_calcjob(aiida_localhost, 'cp2k', Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE, files)
    plan = {
        'engine': 'cp2k', 'mode': 'aimd', 'failed_workchains': {},
        'settings': {'aimd': {'temperature': 5000.0}, 'sample_type': None, 'iteration': None},
        'calculations': {'napo3__00': {'structure': 'napo3', 'order': 0, 'pk': calc.pk, 'uuid': calc.uuid,
                                       'exit_status': calc.exit_status, 'exit_message': calc.exit_message,
                                       'finished_ok': False, 'sources': ['retrieved']}},
    }  # fmt: skip
    results = collect_training_set(plan=orm.Dict(plan), napo3__00__retrieved=calc.outputs.retrieved)
    frames = results['training_set'].get_frameset()
    assert frames.n_frames == 2  # steps 0 and 2; the half-written third frame is dropped
    assert frames.has_stress.all()
    (failure,) = results['report']['failed']
    assert failure['uuid'] == calc.uuid and failure['frames_kept'] == 2
    assert '303' in failure['why']


@pytest.fixture
def pw_workchain(fake_code, sio2_structure, qe_pseudo_family):
    def factory(parameters: dict):
        inputs = {
            'pw': {
                'code': fake_code, 'structure': sio2_structure, 'parameters': orm.Dict(parameters),
                'pseudos': qe_pseudo_family.get_pseudos(structure=sio2_structure),
                'metadata': {'options': {'resources': {'num_machines': 1}}},
            },
            'kpoints_distance': orm.Float(10.0),
        }  # fmt: skip
        process = instantiate_process(get_manager().get_runner(), LabelPwBaseWorkChain, **inputs)
        process.setup()
        process.validate_kpoints()
        process.prepare_process()
        return process

    return factory


def test_pw_scf_not_converged_adds_smearing_and_restarts_from_wavefunctions(pw_workchain, aiida_localhost):
    process = pw_workchain({
        'CONTROL': {'calculation': 'md'}, 'SYSTEM': {'ecutwfc': 20, 'occupations': 'fixed'},
        'ELECTRONS': {'mixing_beta': 0.4},
    })  # fmt: skip
    calc = fake_calcjob(aiida_localhost, 'quantumespresso.pw',
                        PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED)  # fmt: skip
    process.ctx.children = [calc]
    result = process.handle_scf_not_converged_smearing(calc)
    assert result.do_break and result.exit_code.status == 0
    parameters = process.ctx.inputs.parameters
    assert parameters['SYSTEM']['occupations'] == 'smearing' and parameters['SYSTEM']['degauss'] == 0.01
    assert parameters['ELECTRONS']['mixing_beta'] == pytest.approx(0.4 * process.defaults.delta_factor_mixing_beta)
    assert parameters['ELECTRONS']['mixing_mode'] == 'local-TF'
    assert parameters['ELECTRONS']['startingwfc'] == 'file'
    assert process.ctx.inputs.parent_folder.uuid == calc.outputs.remote_folder.uuid
    # Already smeared: the smearing doubles.
    process.handle_scf_not_converged_smearing(calc)
    assert process.ctx.inputs.parameters['SYSTEM']['degauss'] == pytest.approx(0.02)


def test_pw_walltime_restart_is_the_plugins(pw_workchain, aiida_localhost):
    """Walltime and interrupted MD are handled by PwBaseWorkChain itself; check it stays active in the subclass."""
    process = pw_workchain({'CONTROL': {'calculation': 'md'}, 'SYSTEM': {'ecutwfc': 20}, 'ELECTRONS': {}})
    calc = fake_calcjob(aiida_localhost, 'quantumespresso.pw', PwCalculation.exit_codes.ERROR_OUT_OF_WALLTIME)
    result = process.handle_out_of_walltime(calc)
    assert result.do_break
    assert process.ctx.inputs.parameters['CONTROL']['restart_mode'] == 'restart'


def test_pw_md_stopped_at_unconverged_scf_is_restarted(pw_workchain, aiida_localhost):
    """pw.x ends an MD at an unconverged SCF and the plugin reports exit status 0: the sanity check restarts it."""
    from aiida.engine import ExitCode

    process = pw_workchain({'CONTROL': {'calculation': 'md'}, 'SYSTEM': {'ecutwfc': 20}, 'ELECTRONS': {}})
    parameters = orm.Dict({'convergence_info': {'scf_conv': {'convergence_achieved': False, 'n_scf_steps': 80}}})
    last = process.ctx.inputs.structure.clone()
    calc = fake_calcjob(aiida_localhost, 'quantumespresso.pw', ExitCode(0, 'finished'),
                        outputs={'output_parameters': parameters, 'output_structure': last})  # fmt: skip
    result = process.sanity_check_md_scf_converged(calc)
    assert result.do_break and result.exit_code.status == 0
    assert process.ctx.inputs.structure.uuid == last.uuid  # the MD continues from where it stopped
    assert process.ctx.inputs.parameters['SYSTEM']['occupations'] == 'smearing'
    assert process.ctx.inputs.parameters['CONTROL']['restart_mode'] == 'from_scratch'

    converged = orm.Dict({'convergence_info': {'scf_conv': {'convergence_achieved': True}}})
    calc = fake_calcjob(aiida_localhost, 'quantumespresso.pw', ExitCode(0, 'finished'),
                        outputs={'output_parameters': converged})  # fmt: skip
    assert process.sanity_check_md_scf_converged(calc) is None


def _pw_trajectory(first_step: int, evaluated: int, extra_positions: int = 0) -> orm.TrajectoryData:
    """A pw.x MD ``output_trajectory`` of two atoms: ``evaluated`` force evaluations from global MD step
    ``first_step`` on, plus ``extra_positions`` positions without energy (pw.x printed the next positions, then
    stopped). Positions and energy encode the global step, so any lost or doubled frame shows."""
    import numpy as np

    steps = np.arange(first_step, first_step + evaluated + extra_positions)
    positions = np.array([[[0.0, 0.0, 0.0], [1.6, 0.0, 0.0]]]) + 0.01 * steps[:, None, None]
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(['Si', 'O'], positions, cells=np.tile(np.eye(3) * 5.0, (len(steps), 1, 1)))
    trajectory.set_array('energy', -1.0 * steps[:evaluated])
    trajectory.set_array('forces', np.ones((evaluated, 2, 3)))
    trajectory.set_array('stress', np.tile(np.eye(3), (evaluated, 1, 1)))
    return trajectory


@pytest.mark.parametrize('repeats_last_step', [False, True])
def test_pw_restarted_md_loses_and_doubles_no_frame(aiida_localhost, repeats_last_step):
    """MD of 9 steps (0..8), a frame every 2. The first run stops after step 4 (after printing the positions of step
    5); the restart continues from step 5, or (``repeats_last_step``) evaluates step 4 again. Either way the training
    set holds steps 0, 2, 4, 6, 8 once each; numbering steps per CalcJob lost 0 and 2 of the restart."""
    from aiida_glassml.workflows.label import collect_training_set

    first = _pw_trajectory(0, 5, extra_positions=1)
    second = _pw_trajectory(4, 5) if repeats_last_step else _pw_trajectory(5, 4)
    calcs = [
        fake_calcjob(aiida_localhost, 'quantumespresso.pw', PwCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
                     outputs={'output_trajectory': first}),
        fake_calcjob(aiida_localhost, 'quantumespresso.pw', _finished_ok(), outputs={'output_trajectory': second}),
    ]  # fmt: skip
    plan = {
        'engine': 'qe', 'mode': 'aimd', 'failed_workchains': {},
        'settings': {'aimd': {'temperature': 5000.0, 'sample_every': 2}, 'sample_type': None, 'iteration': None},
        'calculations': {
            f'sio__{order:02d}': {'structure': 'sio', 'order': order, 'pk': calc.pk, 'uuid': calc.uuid,
                                  'exit_status': calc.exit_status, 'exit_message': calc.exit_message,
                                  'finished_ok': calc.exit_status == 0, 'sources': ['output_trajectory']}
            for order, calc in enumerate(calcs)
        },
    }  # fmt: skip
    sources = {f'sio__{order:02d}__output_trajectory': calc.outputs.output_trajectory for order, calc in enumerate(calcs)}
    results = collect_training_set(plan=orm.Dict(plan), **sources)
    frames = results['training_set'].get_frameset()
    assert frames.energy.tolist() == [0.0, -2.0, -4.0, -6.0, -8.0]  # energy = -(global step)
    assert [m['source_uuid'] for m in frames.metadata] == [calcs[0].uuid] * 3 + [calcs[1].uuid] * 2
    report = results['report'].get_dict()
    assert report['frames_per_calculation'] == {'sio__00': 3, 'sio__01': 2}
    (failure,) = report['failed']
    assert failure['uuid'] == calcs[0].uuid and failure['frames_kept'] == 3


def _finished_ok():
    from aiida.engine import ExitCode

    return ExitCode(0, 'finished')
