"""A daemon crash inside a heavy analysis step leaves nothing half-done (issue 14, item 1): the step is an
``AnalysisCalculation`` job, so when the daemon is SIGKILLed while it computes, the job runs on, the restarted daemon
collects it, the work chain finishes and every process node is sealed, so the archive can be written. (When this step
was a calcfunction, its node stayed "Running" forever and ``verdi archive create`` refused the work chain.)

The recovery is the documented one (``daemon_tools.restart_after_crash``: ``verdi daemon stop``, ``verdi process
repair``, start). An earlier version of this test once stayed 'waiting' in CI: the SIGKILLed daemon left its PID file,
so ``repair`` refused to run ("the daemon needs to be stopped") and the failure went unnoticed; a process whose broker
task was in flight at the kill then never ran again, and the work chain waited for it. Now the stop clears the PID
file and a refused repair fails the test. The kill may also land inside the step that submits the two jobs; the work
chain re-runs it from its checkpoint and ``SubmitOnceMixin`` reuses the jobs already launched (each runs once). The
deadlines leave room for a loaded machine; alone it takes about 1.5 minutes."""

import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
BIN = pathlib.Path(sys.executable).parent


def test_daemon_killed_during_the_structure_job_leaves_an_archivable_work_chain(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'OMP_NUM_THREADS': '1'}
    setup = subprocess.run([str(BIN / 'aiida-glassml'), '-p', 'crash', 'setup', '--no-apt', '--no-codes'], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert setup.returncode == 0, setup.stdout + setup.stderr
    # files, not pipes: the daemon the job starts must not hold the test's pipes open
    out, err = tmp_path / 'job.out', tmp_path / 'job.err'
    try:
        with out.open('w') as stdout, err.open('w') as stderr:
            job = subprocess.run([sys.executable, str(HERE / 'daemon_job.py'), 'crash', str(tmp_path)], env=env,
                                 stdout=stdout, stderr=stderr, timeout=600, check=False)  # fmt: skip
    finally:  # never leave a daemon behind, whatever happened
        subprocess.run([str(BIN / 'verdi'), '-p', 'crash', 'daemon', 'stop'], env=env, capture_output=True,
                       timeout=120, check=False)  # fmt: skip
    assert job.returncode == 0, out.read_text()[-3000:] + err.read_text()[-3000:]
    result = json.loads(out.read_text().strip().splitlines()[-1])
    assert result['killed'] >= 2, result  # circus and its worker
    assert result['repaired'] is True, result  # `verdi process repair` ran (the daemon stopped, its PID file gone)
    assert result['computing'] is True, result  # killed while the structure job was still computing
    assert result['state'] == 'finished' and result['exit_status'] == 0, result
    assert result['jobs'] == ['network:0', 'structure:0'], result  # each heavy step ran once, and finished
    assert result['unsealed'] == [], result
    assert result['archive_error'] is None and result['archive_size'] > 0, result
    assert {'results', 'rdf', 'structure_factor', 'rdf_figure', 'bond_angles', 'rings'} <= set(result['outputs'])
