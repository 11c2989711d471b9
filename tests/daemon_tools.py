"""Killing and stopping a profile's daemon for the crash tests (the ``daemon_job.py`` scripts, run in subprocesses)."""

import signal
import sys
import time

import psutil


def is_job(process: psutil.Process) -> bool:
    """The scheduler job of a CalcJob (the direct scheduler's bash script and what it runs)."""
    try:
        return any('_aiidasubmit.sh' in ' '.join(p.cmdline()) for p in [process, *process.parents()])
    except psutil.Error:
        return False


def kill_daemon(client, spare_jobs: bool = False) -> int:
    """SIGKILL the circus arbiter and every worker: nothing gets to clean up. With ``spare_jobs`` the scheduler jobs
    survive, as on a cluster where the daemon machine dies but the jobs run on. Returns how many were killed."""
    parent = psutil.Process(client.get_daemon_pid())
    victims = [parent, *(p for p in parent.children(recursive=True) if not (spare_jobs and is_job(p)))]
    killed = []
    for process in victims:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:  # a short-lived child (a `ps` poll, a submission shell) ended meanwhile
            continue
        killed.append(process)
    psutil.wait_procs(killed, timeout=30)
    return len(killed)


def stop_daemon(client, attempts: int = 3) -> None:
    """Stop the daemon, retrying: circus answers slowly on a loaded machine."""
    for _ in range(attempts):
        try:
            client.stop_daemon(wait=True, timeout=60)
            return
        except Exception:  # noqa: BLE001 - DaemonTimeoutException or a circus not yet answering
            time.sleep(5)


def restart_after_crash(client, profile_name: str, node):
    """What a user does after the daemon died (docs/profiles.md): ``verdi daemon stop``, ``aiida-glassml maintenance
    clear-broker``, ``verdi process repair`` (it re-sends the broker task of any active process that lost it), then
    start the daemon again.

    Each step matters. A SIGKILLed daemon leaves its PID file behind, and ``repair`` refuses to run while that file
    says the daemon is up (the stop removes it); a refused or failed repair raises here. A SIGKILLed ZeroMQ broker
    leaves the file naming its socket, and a new worker that reads it before the new broker rewrites it connects to
    the dead socket and never receives a task: under load every process then waited forever. ``repair --force`` ends
    every other database connection of the profile, so this process gives up its own first and reconnects on next
    use. Returns ``node`` loaded again through the new connection."""
    import subprocess

    from aiida import orm
    from aiida.manage import get_manager

    pk = node.pk
    get_manager().reset_profile_storage()
    stop = subprocess.run(['verdi', '-p', profile_name, 'daemon', 'stop'], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    print(stop.stdout + stop.stderr, file=sys.stderr)
    if client.is_daemon_running:
        raise RuntimeError(f'the daemon PID file {client.circus_pid_file} is still there after `verdi daemon stop`')
    clear = subprocess.run(['aiida-glassml', '-p', profile_name, 'maintenance', 'clear-broker'], capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    print(clear.stdout + clear.stderr, file=sys.stderr)
    if clear.returncode != 0:
        raise RuntimeError(f'aiida-glassml maintenance clear-broker failed: {clear.stdout}{clear.stderr}')
    repair = subprocess.run(['verdi', '-p', profile_name, 'process', 'repair', '--force'],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    print(repair.stdout + repair.stderr, file=sys.stderr)
    if repair.returncode != 0:
        raise RuntimeError(f'verdi process repair failed (exit {repair.returncode}): {repair.stdout}{repair.stderr}')
    client.start_daemon(number_workers=1, timeout=120)
    return orm.load_node(pk)


def report_unfinished(node) -> None:
    """On a deadline, say which processes under ``node`` never ended, so a hang in CI can be read from its log."""
    for child in [node, *node.called_descendants]:
        if not child.is_terminated:
            print(f'unfinished: {child.process_label}<{child.pk}> {child.process_state} '
                  f'checkpoint={child.checkpoint is not None}', file=sys.stderr)  # fmt: skip
