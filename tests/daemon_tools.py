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
    for process in victims:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=30)
    return len(victims)


def stop_daemon(client, attempts: int = 3) -> None:
    """Stop the daemon, retrying: circus answers slowly on a loaded machine."""
    for _ in range(attempts):
        try:
            client.stop_daemon(wait=True, timeout=60)
            return
        except Exception:  # noqa: BLE001 - DaemonTimeoutException or a circus not yet answering
            time.sleep(5)


def restart_after_crash(client, profile_name: str, node):
    """What a user does after the daemon died: ``verdi process repair`` with the daemon stopped (it re-sends the
    broker task of any active process that lost it), then start the daemon again. ``repair --force`` ends every other
    database connection of the profile, so this process gives up its own first and reconnects on next use. Returns
    ``node`` loaded again through the new connection."""
    import subprocess

    from aiida import orm
    from aiida.manage import get_manager

    pk = node.pk
    get_manager().reset_profile_storage()
    repair = subprocess.run(['verdi', '-p', profile_name, 'process', 'repair', '--force'],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    print(repair.stdout + repair.stderr, file=sys.stderr)
    client.start_daemon(number_workers=1, timeout=120)
    return orm.load_node(pk)


def report_unfinished(node) -> None:
    """On a deadline, say which processes under ``node`` never ended, so a hang in CI can be read from its log."""
    for child in [node, *node.called_descendants]:
        if not child.is_terminated:
            print(f'unfinished: {child.process_label}<{child.pk}> {child.process_state} '
                  f'checkpoint={child.checkpoint is not None}', file=sys.stderr)  # fmt: skip
