"""Killing and stopping a profile's daemon for the crash tests (the ``daemon_job.py`` scripts, run in subprocesses)."""

import signal
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
