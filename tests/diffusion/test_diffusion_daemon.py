"""Resilience on the production backend: the daemon is killed (SIGKILL) while the MD runs of a LAMMPS diffusion
series are in flight on a PostgreSQL + RabbitMQ profile and started again; every run and every analysis then
finishes exactly once."""

import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_daemon_killed_during_the_md_fan_out_repeats_nothing(psql_rabbitmq_profile):
    name, env = psql_rabbitmq_profile
    job = subprocess.run([sys.executable, str(HERE / 'daemon_job.py'), name], env=env, capture_output=True,
                         text=True, timeout=1200)  # fmt: skip
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    result = json.loads(job.stdout.strip().splitlines()[-1])
    assert result['killed'] >= 2, result  # circus and its worker
    assert len(result['in_flight']) == 2, result  # both MD jobs were running when the daemon died
    assert result['state'] == 'finished' and result['exit_status'] == 0, result
    runs = ['T2000_nvt_replica_0', 'T2500_nvt_replica_0']
    # each (temperature, variant, replica) ran once: one base work chain, one CalcJob (the one in flight), one job
    assert result['md_labels'] == runs and all(result['md_finished_ok']), result
    assert result['calcs_per_run'] == {label: 1 for label in runs}, result
    assert result['calc_pks'] == result['in_flight'] and all(result['calcs_finished_ok']), result
    assert len(set(result['job_ids'])) == 2, result
    # each run analysed once, and the series made from both
    assert result['analysis_labels'] == [f'analysis_{label}' for label in runs], result
    assert all(result['analyses_finished_ok']) and result['analysed_runs'] == runs, result
    assert result['diffusion'] == ['all', 'nvt'], result
