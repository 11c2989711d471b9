"""Resilience on the production backend: the daemon is killed (SIGKILL) during an active-learning iteration on a
PostgreSQL + RabbitMQ profile and started again; the loop finishes with no frame lost or labelled twice."""

import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_daemon_killed_mid_iteration_loses_and_repeats_nothing(psql_rabbitmq_profile, data_dir):
    name, env = psql_rabbitmq_profile
    job = subprocess.run([sys.executable, str(HERE / 'daemon_job.py'), name, str(data_dir)], env=env,
                         capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    result = json.loads(job.stdout.strip().splitlines()[-1])
    assert result['killed'] >= 2, result  # circus and its worker
    assert result['state'] == 'finished' and result['stop'] == 'max_iterations', result
    # every exploration run once, one labelling of the selection, each selected frame labelled exactly once
    assert result['md_runs'] == 2 and len(set(result['md_labels'])) == 2, result
    assert result['label_chains'] == 1 and result['label_calcs'] == 1, result
    assert result['n_labelled'] == result['n_selected'] == result['unique_labelled'] >= 1, result
    assert result['train_frames'] == result['start_frames'] + result['n_labelled'], result
