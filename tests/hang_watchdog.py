"""A backstop for a test that pytest-timeout cannot stop, so that a hang is a failure with stacks, not a CI run killed
at its time limit with nothing to read.

pytest-timeout's signal raises inside the test, but a test that waits in AiiDA's event loop can swallow it (asyncio
catches what a callback raises and logs it, and the process waits on). Here a timer thread per test, started beside
pytest-timeout's own through its ``pytest_timeout_set_timer`` hook, fires ``GRACE_S`` (120 s, or
``GLASSML_HANG_GRACE_S``) after the test's own timeout, writes the stacks of every thread and the child
processes to a file, kills the children and ends the worker. pytest-xdist reports the worker crash as that test's
failure, and ``pytest_handlecrashitem`` below puts the file into the report; the other tests go on in a new worker.

Two more things for reading a CI log that only shows its tail: every test phase longer than ``SLOW_S`` is a line with
the minutes since the session started, and once the session has run ``STACKS_AFTER_S`` (60 min, past a normal
run here; ``GLASSML_TEST_STACKS_AFTER_S``) and then every 10 min, each worker prints what all its threads are doing."""

from __future__ import annotations

import faulthandler
import os
import pathlib
import signal
import sys
import tempfile
import threading
import time

import pytest

GRACE_S = float(os.environ.get('GLASSML_HANG_GRACE_S', '120'))
HANG_DIR_ENV = 'GLASSML_HANG_DIR'
SLOW_S = 60.0
STACKS_AFTER_S = float(os.environ.get('GLASSML_TEST_STACKS_AFTER_S', '3600'))
STARTED = time.monotonic()


def pytest_configure(config):
    # the controller picks the folder; xdist workers start later and inherit it
    if not os.environ.get(HANG_DIR_ENV):
        os.environ[HANG_DIR_ENV] = tempfile.mkdtemp(prefix='glassml-hangs-')
    hang_dir = pathlib.Path(os.environ[HANG_DIR_ENV])
    if hasattr(config, 'workerinput'):  # a worker: SIGUSR1 writes every thread's stack (the file stays open)
        stream = (hang_dir / f'stacks-{config.workerinput["workerid"]}-{os.getpid()}.txt').open('w')
        faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True)
        config._glassml_stack_stream = stream
        return
    config.pluginmanager.register(SlowTimeline(config), 'glassml-slow-timeline')
    if STACKS_AFTER_S > 0 and getattr(config.option, 'numprocesses', None):  # xdist (without it, output is captured)
        timer = threading.Timer(STACKS_AFTER_S, print_worker_stacks, args=(config, hang_dir))
        timer.daemon = True
        timer.start()


def minutes() -> str:
    return f'{(time.monotonic() - STARTED) / 60:5.1f} min'


def print_worker_stacks(config, hang_dir: pathlib.Path) -> None:
    """The xdist controller, when the session runs far too long: each worker's threads, then again in 10 min."""
    import psutil

    writer = config.get_terminal_writer()
    workers = []  # the xdist workers that are ready for SIGUSR1 (their stack file exists; a new one would die of it)
    for path in hang_dir.glob('stacks-*.txt'):
        try:
            workers.append(psutil.Process(int(path.stem.rsplit('-', 1)[1])))
            workers[-1].send_signal(signal.SIGUSR1)
        except (psutil.Error, ValueError):
            continue
    time.sleep(5)
    writer.line(f'\n{minutes()}: the tests run far longer than they should; what each worker is doing:')
    for path in sorted(hang_dir.glob('stacks-*.txt')):
        writer.line(f'--- {path.name} (the last dump is at the end)\n{path.read_text(errors="replace")[-6000:]}')
    for worker in workers:
        try:
            for child in worker.children(recursive=True):
                writer.line(f'{worker.pid} runs {child.pid} {child.status()}: {" ".join(child.cmdline())[:200]}')
        except psutil.Error:
            continue
    timer = threading.Timer(600, print_worker_stacks, args=(config, hang_dir))
    timer.daemon = True
    timer.start()


class SlowTimeline:
    """The controller's line for each test phase longer than ``SLOW_S``, with the time since the session started."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        if report.duration > SLOW_S:
            worker = getattr(getattr(report, 'node', None), 'gateway', None)
            where = f' on {worker.id}' if worker is not None else ''
            line = f'{minutes()}: {report.nodeid} ({report.when}) took {report.duration:.0f} s{where}'
            self.config.get_terminal_writer().line(f'\n{line}')


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


def pytest_timeout_set_timer(item, settings):
    """pytest-timeout's own hook, with the limit it resolved (mark, --timeout, PYTEST_TIMEOUT or ini): the backstop
    starts beside its timer (returning None lets pytest-timeout's implementation run too)."""
    waited = settings.timeout + GRACE_S
    item.glassml_backstop = threading.Timer(waited, dump_and_exit, args=(item.nodeid, waited))
    item.glassml_backstop.daemon = True
    item.glassml_backstop.start()


def pytest_timeout_cancel_timer(item):
    backstop = getattr(item, 'glassml_backstop', None)
    if backstop is not None:
        backstop.cancel()


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    """pytest-xdist: a worker ended during ``crashitem``; add what the watchdog wrote, if it was the watchdog."""
    for path in sorted(pathlib.Path(os.environ.get(HANG_DIR_ENV, '.')).glob('hang-*.txt')):
        text = path.read_text(errors='replace')
        if text.split('\n', 1)[0] == crashitem:
            report.longrepr = f'{report.longrepr}\n{text}'
            path.unlink()
            return
