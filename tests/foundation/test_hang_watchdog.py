"""tests/hang_watchdog.py: a test that outlives its timeout because the timeout's exception was swallowed (raised
inside an asyncio callback, as in AiiDA's event loop) fails with its stacks, and the tests after it still run."""

import os
import pathlib
import shutil
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parents[1]

PROBE = '''
import asyncio
import time

import pytest


@pytest.mark.timeout(2)
def test_waits_in_the_event_loop():
    loop = asyncio.new_event_loop()

    def busy():  # the loop is always inside a callback when the timeout fires
        start = time.monotonic()
        while time.monotonic() - start < 0.2:
            pass
        loop.call_soon(busy)

    loop.call_soon(busy)
    loop.run_until_complete(asyncio.sleep(600))


def test_after_it():
    assert True
'''


def test_a_hung_test_fails_with_its_stacks_and_the_rest_run(tmp_path):
    for name in ('conftest.py', 'hang_watchdog.py'):
        shutil.copy(TESTS / name, tmp_path / name)
    (tmp_path / 'test_probe.py').write_text(PROBE)
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-n', '1', '--rootdir', str(tmp_path),
               '-c', os.devnull, str(tmp_path / 'test_probe.py')]  # fmt: skip
    env = {**os.environ, 'GLASSML_HANG_GRACE_S': '3', 'GLASSML_REQUIRE_ALL': '0'}
    env.pop('GLASSML_HANG_DIR', None)  # the probe session's own folder
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 1 and '1 failed, 1 passed' in result.stdout, result.stdout + result.stderr
    assert "crashed while running 'test_probe.py::test_waits_in_the_event_loop'" in result.stdout, result.stdout
    assert 'still running 5 s after it started' in result.stdout, result.stdout
    assert 'line 19 in test_waits_in_the_event_loop' in result.stdout, result.stdout
