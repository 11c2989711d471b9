"""A backstop for a test that pytest-timeout cannot stop, so that a hang is a failure with stacks, not a CI run killed
at its time limit with nothing to read.

pytest-timeout's signal raises inside the test, but a test that waits in AiiDA's event loop can swallow it (asyncio
catches what a callback raises and logs it, and the process waits on). Here a timer thread per test fires
``GRACE_S`` (120 s, or ``GLASSML_HANG_GRACE_S``) after the test's own timeout, writes the stacks of every thread and the child processes to a file,
kills the children and ends the worker. pytest-xdist reports the worker crash as that test's failure, and
``pytest_handlecrashitem`` below puts the file into the report; the other tests go on in a new worker."""

from __future__ import annotations

import faulthandler
import os
import pathlib
import sys
import tempfile
import threading

import pytest

GRACE_S = float(os.environ.get('GLASSML_HANG_GRACE_S', '120'))
HANG_DIR_ENV = 'GLASSML_HANG_DIR'


def pytest_configure(config):
    # the controller picks the folder; xdist workers start later and inherit it
    if not os.environ.get(HANG_DIR_ENV):
        os.environ[HANG_DIR_ENV] = tempfile.mkdtemp(prefix='glassml-hangs-')


def time_limit(item) -> float:
    """The item's pytest-timeout limit in seconds (its ``timeout`` mark, else the ini value); 0 for none."""
    marker = item.get_closest_marker('timeout')
    if marker is not None and (marker.args or 'timeout' in marker.kwargs):
        value = marker.args[0] if marker.args else marker.kwargs['timeout']
    else:
        value = item.config.getini('timeout')
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def dump_and_exit(nodeid: str, waited: float) -> None:
    import psutil

    path = pathlib.Path(os.environ[HANG_DIR_ENV]) / f'hang-{os.getpid()}.txt'
    children = psutil.Process().children(recursive=True)
    with path.open('w') as stream:
        stream.write(f'{nodeid}\nstill running {waited:.0f} s after it started, past its timeout: every thread, '
                     'then the child processes\n')  # fmt: skip
        stream.flush()
        faulthandler.dump_traceback(stream, all_threads=True)
        for child in children:
            try:
                stream.write(f'child {child.pid} {child.status()}: {" ".join(child.cmdline())[:300]}\n')
            except psutil.Error:
                continue
    sys.stderr.write(path.read_text())
    for child in children:  # no orphans left loading the machine for the tests that follow
        try:
            child.kill()
        except psutil.Error:
            continue
    os._exit(70)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    limit = time_limit(item)
    if not limit:
        yield
        return
    timer = threading.Timer(limit + GRACE_S, dump_and_exit, args=(item.nodeid, limit + GRACE_S))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    """pytest-xdist: a worker ended during ``crashitem``; add what the watchdog wrote, if it was the watchdog."""
    for path in sorted(pathlib.Path(os.environ.get(HANG_DIR_ENV, '.')).glob('hang-*.txt')):
        text = path.read_text(errors='replace')
        if text.split('\n', 1)[0] == crashitem:
            report.longrepr = f'{report.longrepr}\n{text}'
            path.unlink()
            return
