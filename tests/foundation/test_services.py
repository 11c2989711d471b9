"""The production backend for real: a profile on PostgreSQL and RabbitMQ, a daemon, a submitted work chain.

Skips (naming the service) when PostgreSQL or RabbitMQ is unreachable; with GLASSML_TEST_SERVICES=required (CI) an
unreachable service fails the test instead, so it can never pass by accident."""

import os
import pathlib
import secrets
import subprocess
import sys

import pytest


HERE = pathlib.Path(__file__).parent
BIN = pathlib.Path(sys.executable).parent


def run(command, env, timeout=300):
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f'{command} failed:\n{proc.stdout}\n{proc.stderr}'
    return proc.stdout


@pytest.fixture
def isolated_env(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    return env


@pytest.mark.services
@pytest.mark.parametrize('broker', ['rabbitmq', 'zeromq'])
def test_psql_profile_daemon_runs_submitted_work_chain(broker, isolated_env, require_service):
    require_service('PostgreSQL', '127.0.0.1', 5432)
    if broker == 'rabbitmq':
        require_service('RabbitMQ', '127.0.0.1', 5672)
    name = f'glassml-test-{secrets.token_hex(4)}'
    out = run([str(BIN / 'aiida-glassml'), 'setup', '--storage', 'psql', '--broker', broker, '--profile-name', name,
               '--no-apt'], isolated_env)  # fmt: skip
    assert f'Created profile `{name}` (storage: psql, broker: {broker})' in out
    try:
        status = run([str(BIN / 'aiida-glassml'), '-p', name, 'status'], isolated_env)
        assert 'core.psql_dos' in status
        assert ('core.rabbitmq' if broker == 'rabbitmq' else 'core.zeromq') in status
        assert 'pacemaker' in status  # codes were registered on the new profile
        backend = 'core.rabbitmq' if broker == 'rabbitmq' else 'core.zeromq'
        job = run([sys.executable, str(HERE / 'services_job.py'), name, backend], isolated_env)
        assert job.startswith('OK pk=')
    finally:
        deleted = subprocess.run([str(BIN / 'aiida-glassml'), 'delete-profile', name, '--force'], env=isolated_env,
                                 capture_output=True, text=True, check=False)  # fmt: skip
    # one login role per profile, dropped with it
    role = 'aiida_' + name.replace('-', '_')
    assert f'Dropped PostgreSQL role {role}' in deleted.stdout, deleted.stdout + deleted.stderr


def test_embedded_profile_setup_is_idempotent(isolated_env):
    """The laptop profile: sqlite_dos + ZeroMQ, made twice without error."""
    command = [str(BIN / 'aiida-glassml'), 'setup', '--no-apt', '--profile-name', 'laptop']
    first = run(command, isolated_env)
    second = run(command, isolated_env)
    assert 'Created profile `laptop` (storage: sqlite, broker: zeromq)' in first
    assert 'Profile `laptop` exists (storage: sqlite, broker: zeromq); keeping it.' in second
    status = run([str(BIN / 'aiida-glassml'), '-p', 'laptop', 'status'], isolated_env)
    assert 'core.sqlite_dos' in status and 'core.zeromq' in status
