"""Through a real Slurm cluster on 127.0.0.1 (conftest.py): a CP2K AIMD labelling whose job is cancelled with
``scancel`` mid-run and continued (no frame lost), a LAMMPS MD over core.local and core.ssh, a LAMMPS job killed at
its walltime, the Kokkos GPU request accepted by ``sbatch --test-only``, a partition that does not exist, and the
handlers of a refused account.

The walltime job starts first and runs in the background while the other tests run (Slurm time limits are whole
minutes): all processes share the runner's event loop, so each ``run_get_node`` also moves it on."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import re
import threading
import time

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.calculations.lammps_md import LammpsMDCalculation
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.md import protocol as md
from aiida_glassml.structures.packing import random_packing
from aiida_glassml.workflows.label import LabelWorkChain
from aiida_glassml.workflows.lammps_base import LammpsMDBaseWorkChain

from .conftest import slurm

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('walltime_run')]

TESTS = pathlib.Path(__file__).parents[1]


def napo3_atoms():
    """The labelling tests' 20-atom Na4P4O12 cell (tests/labeling/conftest.py)."""
    spec = importlib.util.spec_from_file_location('_glassml_labeling_conftest', TESTS / 'labeling' / 'conftest.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.napo3_atoms()


def napo3_glass(formula_units: int = 20, density_g_cm3: float = 2.5) -> orm.StructureData:
    from ase import Atoms

    symbols = ['Na', 'P', 'O', 'O', 'O'] * formula_units
    length = (Atoms(symbols).get_masses().sum() * 1.66053906660 / density_g_cm3) ** (1 / 3)
    cell = np.eye(3) * length
    positions = random_packing(symbols, cell, seed=3, min_distance=1.6)
    return orm.StructureData(ase=Atoms(symbols, positions=positions, cell=cell, pbc=True))


def lammps_inputs(code, protocol: md.MDProtocol, **options) -> dict:
    return {
        'code': code, 'structure': napo3_glass(), 'potential': ClassicalPotentialData.from_library('bmp'),
        'protocol': orm.Dict(protocol.validate().to_dict()), 'trajectory_frames': orm.Int(5),
        'metadata': {'options': {'withmpi': False, 'max_wallclock_seconds': 600, **options}},
    }  # fmt: skip


def start(process_class, **inputs):
    """Launch a process on the runner's loop without waiting for it."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    runner = get_manager().get_runner()
    process = instantiate_process(runner, process_class, **inputs)
    return process, runner.loop.create_task(process.step_until_terminated())


def wait_for(task, timeout: float) -> None:
    from aiida.manage import get_manager

    get_manager().get_runner().loop.run_until_complete(asyncio.wait_for(asyncio.shield(task), timeout))


def calcjobs(node):
    return sorted((n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: n.ctime)


def scheduler_stderr(calc) -> str:
    return calc.outputs.retrieved.base.repository.get_object_content(calc.get_option('scheduler_stderr'))


@pytest.fixture(scope='module')
def walltime_run(slurm_codes):
    """A LAMMPS MD far longer than its one-minute walltime, started before the other tests."""
    protocol = md.MDProtocol([md.NVT(300.0, 1000.0)], thermo_interval=500, dump_interval=5000)
    process, task = start(LammpsMDBaseWorkChain, md=lammps_inputs(slurm_codes['lammps'], protocol,
                                                                  max_wallclock_seconds=60))  # fmt: skip
    yield process, task
    if not task.done():  # the walltime test did not run: cancel the job and let the work chain finish
        for calc in calcjobs(process.node):
            slurm('scancel', '--name', f'aiida-{calc.pk}', check=False)
        wait_for(task, 120)


class CancelWhen(threading.Thread):
    """``scancel`` the first running job whose ``filename`` contains ``marker`` (no database access: a thread)."""

    def __init__(self, filename: str, marker: str, timeout: float = 300.0):
        super().__init__(daemon=True)
        self.filename, self.marker, self.timeout = filename, marker, timeout
        self.cancelled: str | None = None

    def run(self):
        deadline = time.monotonic() + self.timeout
        while self.cancelled is None and time.monotonic() < deadline:
            for line in slurm('squeue', '-h', '-t', 'R', '-o', '%i %Z', check=False).stdout.splitlines():
                job_id, workdir = line.split(maxsplit=1)
                path = pathlib.Path(workdir) / self.filename
                if path.exists() and self.marker in path.read_text(errors='replace'):
                    time.sleep(1.0)  # let the step's restart file be written (it follows the step's output)
                    slurm('scancel', job_id)
                    self.cancelled = job_id
                    return
            time.sleep(0.2)


#: CP2K settings for speed, not accuracy (only the restart is checked): 2 MD steps, a frame each, a coarse grid
CHEAP_CP2K = {'options': {'withmpi': True}, 'aimd': {'steps': 2, 'sample_every': 1},
              'cp2k': {'cutoff': 150, 'rel_cutoff': 30, 'eps_default': 1.0e-6, 'scf': {'eps_scf': 1.0e-4}}}


def test_cp2k_labelling_survives_scancel_without_losing_frames(slurm_codes):
    """CP2K AIMD (2 steps, a frame each) under mpirun in a Slurm job; the job is cancelled after its first MD step.
    aiida-cp2k reports the cut-off output (303); the base work chain continues the MD from CP2K's restart file and
    the labelling keeps the frames of both runs."""
    builder = LabelWorkChain.get_builder_from_protocol(
        slurm_codes['cp2k'], {'napo3': orm.StructureData(ase=napo3_atoms())}, engine='cp2k', mode='aimd',
        protocol='fast', overrides=CHEAP_CP2K,
    )  # fmt: skip
    canceller = CancelWhen('aiida.out', 'MD| Step number')
    canceller.start()
    _, node = run_get_node(builder)
    canceller.join(timeout=1)
    assert canceller.cancelled is not None, 'the CP2K job was not cancelled mid-run'
    assert node.is_finished_ok, node.exit_message
    first, second = calcjobs(node)
    assert first.get_job_id() == canceller.cancelled
    assert re.search(rf'JOB {canceller.cancelled} ON localhost CANCELLED AT', scheduler_stderr(first))
    assert first.exit_status == 303  # ERROR_OUTPUT_INCOMPLETE: what aiida-cp2k makes of the killed run
    assert second.is_finished_ok and 'EXT_RESTART' in second.inputs.parameters.get_dict()
    # the MPI launch as rendered: Open MPI inside the Slurm allocation
    script = first.base.repository.get_object_content('_aiidasubmit.sh')
    assert "'mpirun' '-np' '1'" in script and '#SBATCH --ntasks-per-node=1' in script
    frames = node.outputs.training_set.get_frameset()
    frames_of = lambda calc: [m for m in frames.metadata if m['source_uuid'] == calc.uuid]  # noqa: E731
    # steps 0, 1 from the cancelled run; CP2K counts STEPS from the restored step, so the continuation asks for the one
    # step left (2 - 1) and makes step 2: the frames of the run asked for, nothing lost and nothing run past it
    assert second.inputs.parameters.get_dict()['MOTION']['MD']['STEPS'] == 1
    assert frames.n_frames == 3
    assert len(frames_of(first)) == 2 and len(frames_of(second)) == 1
    positions = frames.positions.reshape(3, 20, 3)
    assert np.abs(np.diff(positions, axis=0)).max(axis=(1, 2)).min() > 1e-3  # three different steps
    assert node.outputs.report.get_dict()['n_frames'] == 3


@pytest.mark.parametrize('transport', ['core.local', 'core.ssh'])
def test_lammps_md_through_slurm(request, slurm_codes, transport):
    from .conftest import slurm_code

    if transport == 'core.ssh':
        code = slurm_code(request.getfixturevalue('slurm_ssh_computer'), 'lammps', 'lmp', 'glassml.lammps_md')
    else:
        code = slurm_codes['lammps']
    protocol = md.MDProtocol([md.Minimize(maxiter=100), md.NVT(300.0, 0.2)], thermo_interval=20, dump_interval=50)
    results, node = run_get_node(LammpsMDBaseWorkChain, md=lammps_inputs(code, protocol))
    assert node.is_finished_ok, node.exit_message
    (calc,) = calcjobs(node)
    assert calc.get_job_id() and calc.computer.scheduler_type == 'core.slurm'
    assert calc.computer.transport_type == transport
    summary = results['results'].get_dict()
    assert summary['stop_reason'] == 'completed' and summary['n_steps'] == protocol.total_steps
    assert results['trajectory'].numsteps > 1 and len(results['structure'].sites) == 100


def test_kokkos_gpu_job_script_is_accepted_by_sbatch(slurm_codes, tmp_path):
    """The script aiida-glassml renders for Kokkos on 1 GPU (``#SBATCH --gres=gpu:1``) passes
    ``sbatch --test-only`` (the test node declares two GPUs it does not have); 3 GPUs are refused."""
    protocol = md.MDProtocol([md.NVT(300.0, 0.01)], thermo_interval=5, dump_interval=0)
    inputs = lammps_inputs(slurm_codes['lammps'], protocol, withmpi=True)
    inputs['settings'] = orm.Dict({'kokkos': True, 'gpus': 1})
    inputs['metadata'].update(dry_run=True, store_provenance=False)
    _, node = run_get_node(LammpsMDCalculation, **inputs)
    folder = pathlib.Path(node.dry_run_info['folder'])
    script = (folder / node.dry_run_info['script_filename']).read_text()
    assert '#SBATCH --gres=gpu:1' in script
    assert "'mpirun' '-np' '1'" in script and "'-k' 'on' 'g' '1' '-sf' 'kk'" in script
    accepted = slurm('sbatch', '--test-only', '--chdir', str(folder), str(folder / '_aiidasubmit.sh'), check=False)
    assert accepted.returncode == 0 and 'to start at' in accepted.stderr, accepted.stderr
    too_many = script.replace('--gres=gpu:1', '--gres=gpu:3')
    (tmp_path / 'job.sh').write_text(too_many)
    refused = slurm('sbatch', '--test-only', str(tmp_path / 'job.sh'), check=False)
    assert refused.returncode != 0 and 'Requested node configuration is not available' in refused.stderr


def test_partition_that_does_not_exist_names_the_sbatch_error(slurm_codes):
    """sbatch refuses the job; aiida retries the submission (transport.task_maximum_attempts) and then pauses the
    CalcJob. The refusal is one line of its log: Slurm's own ``sbatch: error: invalid partition specified: ...``,
    which ``paused_reason`` (``study status``) shows."""
    from aiida.manage import get_config, get_manager
    from aiida.orm import Log

    from aiida_glassml.tools.maintenance import paused_reason

    config, profile = get_config(), get_manager().get_profile()
    saved = {name: config.get_option(name, profile.name) for name in
             ('transport.task_maximum_attempts', 'transport.task_retry_initial_interval')}  # fmt: skip
    config.set_option('transport.task_maximum_attempts', 1, scope=profile.name)
    config.set_option('transport.task_retry_initial_interval', 1, scope=profile.name)
    protocol = md.MDProtocol([md.NVT(300.0, 0.01)], thermo_interval=5, dump_interval=0)
    try:
        process, task = start(LammpsMDCalculation, **lammps_inputs(slurm_codes['lammps'], protocol,
                                                                   queue_name='nosuch'))  # fmt: skip
        deadline = time.monotonic() + 60
        while not process.paused and not task.done() and time.monotonic() < deadline:
            get_manager().get_runner().loop.run_until_complete(asyncio.sleep(0.5))
        assert process.paused, process.node.process_status
        assert 'submit_calculation failed' in process.node.process_status
        lines = [line for log in Log.collection.get_logs_for(process.node) for line in log.message.splitlines()]
        assert 'stderr=sbatch: error: invalid partition specified: nosuch' in lines
        # `study status` (and `study run --wait`) show that line for each paused job
        assert paused_reason(process.node).startswith('sbatch: error: invalid partition specified: nosuch')
        process.kill('test: the partition does not exist', force_kill=True)  # no job to scancel
        task.cancel()  # a killed paused process does not step on by itself
        get_manager().get_runner().loop.run_until_complete(asyncio.sleep(0.1))
        assert process.node.is_killed
    finally:
        for name, value in saved.items():
            config.set_option(name, value, scope=profile.name)


def test_invalid_account_is_one_line_and_final(slurm_codes):
    """sbatch's "Invalid account or account/partition combination" is aiida's exit 131 (this cluster has no
    accounting, so it cannot refuse an account: the child is made up). Both base work chains stop with one line
    naming the account and partition, instead of retrying a submission that would be refused again."""
    from aiida.engine import CalcJob, ProcessState
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_glassml.workflows.dft_base import LabelCp2kBaseWorkChain
    from aiida_glassml.workflows.lammps_base import invalid_account_exit_code

    refused = CalcJob.exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT
    assert refused.status == 131
    protocol = md.MDProtocol([md.NVT(300.0, 0.01)], thermo_interval=5, dump_interval=0)
    process = instantiate_process(get_manager().get_runner(), LammpsMDBaseWorkChain,
                                  md=lammps_inputs(slurm_codes['lammps'], protocol))  # fmt: skip
    process.setup()
    child = orm.CalcJobNode(process_type='aiida.calculations:glassml.lammps_md')
    child.set_option('account', 'nosuch')
    child.set_option('queue_name', 'gpu')
    child.set_process_state(ProcessState.FINISHED)
    child.set_exit_status(refused.status)
    child.store()
    report = process.handle_invalid_account(child)
    assert report.do_break and report.exit_code.status == 361
    message = report.exit_code.message
    assert "account 'nosuch'" in message and "partition 'gpu'" in message and '\n' not in message
    # the CP2K labelling's base work chain: the same handler and message, its own exit status
    assert 'handle_invalid_account' in [h.__name__ for h in LabelCp2kBaseWorkChain.get_process_handlers()]
    assert invalid_account_exit_code(LabelCp2kBaseWorkChain.exit_codes, child).message == message
    assert LabelCp2kBaseWorkChain.exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT.status == 330


def test_walltime_is_reported_and_handled(walltime_run):
    """Slurm kills the job at its one-minute limit (TIMEOUT). Without accounting (no ``sacct``) aiida reads the
    ``CANCELLED ... DUE TO TIME LIMIT`` line of the job's stderr: ERROR_SCHEDULER_OUT_OF_WALLTIME (120), which the
    LAMMPS parser turns into 400; the base work chain stops with 360, the outputs up to the kill attached."""
    process, task = walltime_run
    wait_for(task, 200)
    node = process.node
    (calc,) = calcjobs(node)
    assert 'DUE TO TIME LIMIT' in scheduler_stderr(calc)
    assert calc.exit_status == LammpsMDCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    assert node.exit_status == LammpsMDBaseWorkChain.exit_codes.ERROR_OUT_OF_WALLTIME.status, node.exit_message
    assert 'max_wallclock_seconds' in node.exit_message
    thermo = node.outputs.thermo.get_array('step')
    assert 0 < thermo[-1] < node.outputs.results['n_steps_requested']
