"""Run inside a throw-away profile (``aiida-glassml setup``: SQLite + ZeroMQ): submit GlassAnalysisWorkChain on the
published ACE glass to the daemon, SIGKILL the daemon (circus and worker) while the structure AnalysisCalculation is
computing, restart it, wait for the work chain and write an archive of it. Prints one JSON line with what the test
checks. Called by ``test_analysis_crash.py`` in a subprocess. Argument: the profile name."""

import json
import pathlib
import sys
import time

from aiida import load_profile, orm
from aiida.engine import submit
from aiida.engine.daemon.client import get_daemon_client

profile = load_profile(sys.argv[1])

from aiida_glassml.analysis import read_structure  # noqa: E402
from aiida_glassml.analysis.jobs import FILES  # noqa: E402
from aiida_glassml.tools.setup import ensure_localhost  # noqa: E402
from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from daemon_tools import kill_daemon, report_unfinished, restart_after_crash, stop_daemon  # noqa: E402

computer = ensure_localhost()
computer.set_minimum_job_poll_interval(0.5)
# the work chain's default code, as `aiida-glassml setup` registers it
if not orm.QueryBuilder().append(orm.InstalledCode, filters={'label': 'glassml-python'}).count():
    orm.InstalledCode(computer=computer, filepath_executable=sys.executable, label='glassml-python',
                      default_calc_job_plugin='glassml.analysis', prepend_text='export OMP_NUM_THREADS=1').store()  # fmt: skip
structure = orm.StructureData(ase=read_structure(HERE.parent / 'data' / 'glasses' / 'ACE_300K_1.dat'))
builder = GlassAnalysisWorkChain.get_builder_from_protocol(structure=structure, protocol='fast')

client = get_daemon_client(profile.name)
START = time.time()


def log(message: str) -> None:
    """Progress on stderr: a slow or stuck run can be read from the test's failure."""
    print(f'[{time.time() - START:5.1f} s] {message}', file=sys.stderr, flush=True)


def structure_job(node):
    return next((c for c in node.called if c.process_label == 'AnalysisCalculation'
                 and c.inputs.task.value == 'structure'), None)  # fmt: skip


killed, computing, chain, repaired = 0, None, None, False
client.start_daemon(number_workers=1, timeout=120)  # with ZeroMQ the broker lives in the daemon
try:
    chain = submit(builder)
    log(f'submitted {chain.process_label}<{chain.pk}>')
    deadline = time.time() + 480  # about 90 s alone; generous for a loaded CI machine, never forever
    while time.time() < deadline and not killed and not chain.is_terminated:
        job = structure_job(chain)
        if job is not None and job.get_job_id() and not job.is_terminated:
            workdir = pathlib.Path(job.get_remote_workdir())
            computing = not (workdir / FILES['results']).exists()  # the job has not written its results yet
            killed = kill_daemon(client, spare_jobs=True)  # the job runs on, as on a cluster
            log(f'killed {killed} daemon processes while job {job.get_job_id()} was computing: {computing}')
            chain = restart_after_crash(client, profile.name, chain)  # raises when the repair is refused
            repaired = True
            log('daemon stopped, processes repaired, daemon restarted')
        time.sleep(0.1)
    while not chain.is_terminated and time.time() < deadline:
        time.sleep(1)
finally:
    log(f'work chain terminated: {chain is not None and chain.is_terminated}; stopping the daemon')
    stop_daemon(client)
    log('daemon stopped')
    if chain is None:
        raise SystemExit('the work chain was not submitted')
    chain = orm.load_node(chain.pk)
    if not chain.is_terminated:
        report_unfinished(chain)

archive, error = pathlib.Path(sys.argv[2]) / 'analysis.aiida', None
try:
    from aiida.tools.archive import create_archive

    create_archive([chain], filename=archive)
except Exception as exc:  # noqa: BLE001 - reported to the test
    error = f'{type(exc).__name__}: {exc}'

processes = orm.QueryBuilder().append(orm.ProcessNode, project=['id']).all(flat=True)
print(json.dumps({
    'killed': killed, 'repaired': repaired, 'computing': computing, 'state': chain.process_state.value, 'exit_status': chain.exit_status,
    'jobs': sorted(f'{c.inputs.task.value}:{c.exit_status}' for c in chain.called
                   if c.process_label == 'AnalysisCalculation'),
    'unsealed': [pk for pk in processes if not orm.load_node(pk).is_sealed],
    'outputs': sorted(chain.outputs.structure) if 'structure' in chain.outputs else [],
    'archive_error': error, 'archive_size': archive.stat().st_size if archive.exists() else 0,
}))  # fmt: skip
