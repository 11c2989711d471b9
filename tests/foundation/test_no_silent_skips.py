"""GLASSML_REQUIRE_ALL=1 (set by .ci/run) turns every skip into a failure that names what is missing."""

import os
import pathlib
import shutil
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parents[1]


def test_a_skip_fails_when_everything_is_required(tmp_path):
    for name in ('conftest.py', 'hang_watchdog.py'):
        shutil.copy(TESTS / name, tmp_path / name)
    (tmp_path / 'test_probe.py').write_text(
        'import pytest\n\ndef test_needs_a_code():\n    pytest.skip("`frobnicator` is not installed on this machine")\n'
    )
    command = [sys.executable, '-m', 'pytest', '-q', '-rA', '-p', 'no:cacheprovider', '--rootdir', str(tmp_path),
               '-c', os.devnull, str(tmp_path / 'test_probe.py')]  # fmt: skip
    laptop = subprocess.run(command, capture_output=True, text=True, env={**os.environ, 'GLASSML_REQUIRE_ALL': '0'},
                            cwd=tmp_path, check=False)  # fmt: skip
    assert laptop.returncode == 0 and '1 skipped' in laptop.stdout, laptop.stdout
    ci = subprocess.run(command, capture_output=True, text=True, env={**os.environ, 'GLASSML_REQUIRE_ALL': '1'},
                        cwd=tmp_path, check=False)  # fmt: skip
    assert ci.returncode == 1 and '1 failed' in ci.stdout, ci.stdout
    assert 'GLASSML_REQUIRE_ALL=1 requires every test to run' in ci.stdout and 'frobnicator' in ci.stdout
