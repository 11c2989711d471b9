"""`aiida-glassml -p NEWNAME setup` creates profile NEWNAME (the root `-p` used to refuse any name that was no profile
yet); every other subcommand still refuses an unknown `-p` in one line, creating nothing. The real CLI in a
subprocess on a temporary AIIDA_PATH, never on the developer's profile."""

import json
import os
import pathlib
import subprocess
import sys

from aiida_glassml.tools import setup

BIN = pathlib.Path(sys.executable).parent


def cli(env, *args, ok=True):
    proc = subprocess.run([str(BIN / 'aiida-glassml'), *args], env=env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, f'{args}: exit {proc.returncode}\n{output}'
    assert 'Traceback' not in output, output
    return output


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
