"""`aiida-glassml setup` and `status` tell the truth (issue 14, item 5): `-p` is honoured, a profile of another kind
is refused, the default changes only when asked; `status` reports a killed daemon, orphaned workers, an unreachable
broker, a missing storage, missing executables and codes, and an unsafe RabbitMQ. Each runs the real CLI in a
subprocess on a temporary AIIDA_PATH, never on the developer's profile."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from packaging.version import parse

from aiida_glassml.tools import setup

BIN = pathlib.Path(sys.executable).parent


def cli(env, *args, ok=True):
    proc = subprocess.run([str(BIN / 'aiida-glassml'), *args], env=env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, f'{args}: exit {proc.returncode}\n{output}'
    assert 'Traceback' not in output, output
    return output


def config(env) -> dict:
    return json.loads((pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'config.json').read_text())


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    """A fresh configuration folder with the profile `make profile` makes (`glassml`) and a second one, `b`."""
    root = tmp_path_factory.mktemp('aiida_path')
    env = {**os.environ, 'AIIDA_PATH': str(root), 'OMP_NUM_THREADS': '1'}
    env.pop(setup.LAMMPS_PACE_ENV, None)
    first = cli(env, 'setup', '--no-apt', '--no-codes')
    assert 'Created profile `glassml` (storage: sqlite, broker: zeromq)' in first
    assert '`glassml` is the default profile' in first  # the first profile of a fresh AIIDA_PATH: `make demo` uses it
    second = cli(env, 'setup', '-p', 'b', '--no-apt', '--no-codes')
    assert 'Created profile `b`' in second and 'The default profile stays `glassml`' in second
    return env


def test_setup_honours_p_refuses_other_kinds_and_keeps_the_default(env):
    assert set(config(env)['profiles']) == {'glassml', 'b'} and config(env)['default_profile'] == 'glassml'
    again = cli(env, '-p', 'b', 'setup', '--no-apt', '--no-codes')  # `-p` before the subcommand, as in verdi
    assert 'Profile `b` exists (storage: sqlite, broker: zeromq); keeping it.' in again
    assert set(config(env)['profiles']) == {'glassml', 'b'}  # no `glassml` reconfigured, nothing else made
    out = cli(env, '-p', 'b', 'setup', '--broker', 'none', '--no-apt', '--no-codes', ok=False)
    assert 'profile `b` exists with broker zeromq, not none; add --switch-broker' in out
    out = cli(env, 'setup', '-p', 'b', '--storage', 'psql', '--no-apt', '--no-codes', ok=False)
    assert 'exists with sqlite storage, not psql' in out and 'archive create' in out
    out = cli(env, '-p', 'b', 'setup', '-p', 'glassml', '--no-codes', '--no-apt', ok=False)
    assert 'two profile names' in out
    assert config(env)['profiles']['b']['process_control']['backend'] == 'core.zeromq'
    cli(env, '-p', 'b', 'setup', '--set-default', '--no-apt', '--no-codes')
    assert config(env)['default_profile'] == 'b'
    cli(env, '-p', 'glassml', 'setup', '--set-default', '--no-apt', '--no-codes')
    assert config(env)['default_profile'] == 'glassml'


def test_switch_broker_and_status_of_an_unreachable_or_unsafe_rabbitmq(env, require_service):
    require_service('RabbitMQ', '127.0.0.1', 5672)
    out = cli(env, 'setup', '-p', 'b', '--broker', 'rabbitmq', '--switch-broker', '--no-apt', '--no-codes')
    assert 'Switched the broker of `b` to rabbitmq' in out
    status = cli(env, '-p', 'b', 'status')
    assert 'core.rabbitmq: RabbitMQ 3.' in status
    version = parse(status.split('RabbitMQ ')[1].split()[0])
    if version >= parse('3.8.15'):  # 3.10 here: aiida-core calls it unsupported
        assert 'jobs may be submitted multiple times' in status and 'consumer_timeout' in status
    # the broker goes away: a closed port
    path = pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'config.json'
    data = json.loads(path.read_text())
    data['profiles']['b']['process_control']['config']['broker_port'] = setup_free_port()
    path.write_text(json.dumps(data))
    status = cli(env, '-p', 'b', 'status', ok=False)
    assert 'ERROR: core.rabbitmq: RabbitMQ at 127.0.0.1:' in status and 'is unreachable' in status


def setup_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_rabbitmq_advice_follows_aiida_core():
    assert setup.rabbitmq_advice(parse('3.8.14'), None) is None
    assert setup.rabbitmq_advice(parse('3.10.8'), 'undefined') is None  # the timeout disabled, as aiida advises
    level, message = setup.rabbitmq_advice(parse('3.10.8'), '1800000')
    assert level == 'warning' and '30 min here' in message and 'consumer_timeout, undefined' in message


def test_status_reports_killed_daemon_orphans_and_codes(env, tmp_path):
    status = cli(env, '-p', 'glassml', 'status')
    assert 'profile: glassml (default)' in status
    assert 'daemon:  stopped; start it with `verdi -p glassml daemon start`' in status
    assert 'not registered but found on this machine:' in status and 'pacemaker' in status  # --no-codes
    # a code whose executable is then removed
    exe = tmp_path / 'fake-pw'
    exe.write_text('#!/bin/sh\n')
    exe.chmod(0o755)
    subprocess.run([str(BIN / 'verdi'), '-p', 'glassml', 'code', 'create', 'core.code.installed', '-n', '--label',
                    'gone', '--computer', 'localhost', '--filepath-executable', str(exe),
                    '--default-calc-job-plugin', 'core.shell'], env=env, check=True, capture_output=True)  # fmt: skip
    assert f'gone@localhost           {exe}\n' in cli(env, '-p', 'glassml', 'status')
    exe.unlink()
    status = cli(env, '-p', 'glassml', 'status', ok=False)
    assert f'ERROR: gone@localhost           {exe}: executable missing' in status
    # the daemon's supervisor killed: its PID file stays, naming a process that is gone
    dead = subprocess.Popen(['true'])
    dead.wait()
    pid_file = pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'daemon' / 'circus-glassml.pid'
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(dead.pid))
    # ... and one of its workers still runs (a stand-in with a worker's command line)
    worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '-p', 'glassml', 'daemon',
                               'worker'], env=env)  # fmt: skip
    try:
        status = cli(env, '-p', 'glassml', 'status', ok=False)
    finally:
        worker.kill()
        worker.wait()
        pid_file.unlink()
    assert f'ERROR: not running: its supervisor (PID {dead.pid}) was killed and left a stale PID file' in status
    assert f'daemon processes {worker.pid} of a killed daemon still run' in status
    assert 'verdi -p glassml daemon start' in status


def test_status_of_a_missing_storage_is_one_line(env):
    folder = pathlib.Path(config(env)['profiles']['glassml']['storage']['config']['filepath'])
    moved = folder.with_name(folder.name + '.moved')
    folder.rename(moved)
    try:
        status = cli(env, '-p', 'glassml', 'status', ok=False)
    finally:
        moved.rename(folder)
    assert 'database.sqlite is missing; restore it from a backup' in status
    assert 'codes:   unknown (the storage cannot be opened)' in status


@pytest.fixture
def services(require_service):
    require_service('PostgreSQL', '127.0.0.1', 5432)
    return setup.Services()


def role_exists(conn, role) -> bool:
    return conn.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (role,)).fetchone() is not None


def test_postgres_one_role_per_profile_dropped_with_it(services):
    """A second profile of the same name gets its own role: the first one's password keeps working."""
    import secrets

    import psycopg

    name = f'glassml-test-{secrets.token_hex(3)}'
    first = setup.create_postgres_database(name, services)
    second = setup.create_postgres_database(name, services)
    try:
        assert first['user'] != second['user'] and first['name'] != second['name']
        for db in (first, second):  # each logs in with its own password
            with psycopg.connect(host='127.0.0.1', port=5432, user=db['user'], password=db['password'],
                                 dbname=db['name']) as conn:  # fmt: skip
                assert conn.execute('SELECT current_user').fetchone()[0] == db['user']
    finally:
        dropped = [setup.drop_postgres_database(db['name'], db['user'], services) for db in (first, second)]
    assert dropped[0] == [f'database {first["name"]}', f'role {first["user"]}']
    with setup._postgres_connect(services) as conn:
        assert not role_exists(conn, first['user']) and not role_exists(conn, second['user'])
        # a role that setup did not make is never dropped
        conn.execute('CREATE ROLE glassml_test_foreign')
        try:
            assert setup.drop_postgres_database(None, 'glassml_test_foreign', services) == []
            assert role_exists(conn, 'glassml_test_foreign')
        finally:
            conn.execute('DROP ROLE glassml_test_foreign')


# `aiida-glassml -p NEWNAME setup` creates profile NEWNAME (the root `-p` used to refuse any name that was no profile
# yet); every other subcommand still refuses an unknown `-p` in one line, creating nothing.
def profiles(env) -> dict:
    path = pathlib.Path(env['AIIDA_PATH']) / '.aiida' / 'config.json'
    return json.loads(path.read_text())['profiles'] if path.exists() else {}


def test_root_p_names_the_profile_setup_creates(tmp_path):
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'OMP_NUM_THREADS': '1'}
    env.pop(setup.LAMMPS_PACE_ENV, None)
    env.pop('AIIDA_PROFILE', None)
    out = cli(env, '-p', 'fresh', 'status', ok=False)
    assert "Invalid value for '-p' / '--profile': profile `fresh` does not exist" in out
    assert profiles(env) == {}
    out = cli(env, '-p', 'fresh', 'setup', '--no-apt', '--no-codes')
    assert 'Created profile `fresh` (storage: sqlite, broker: zeromq)' in out
    assert set(profiles(env)) == {'fresh'}
    again = cli(env, '-p', 'fresh', 'setup', '--no-apt', '--no-codes')
    assert 'Profile `fresh` exists' in again
    out = cli(env, '-p', 'other', 'setup', '--profile-name', 'fresh', '--no-apt', '--no-codes', ok=False)
    assert 'two profile names' in out
    assert set(profiles(env)) == {'fresh'}
