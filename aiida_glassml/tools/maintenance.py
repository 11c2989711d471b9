"""Process nodes that can never finish, and sealing them so that a profile stays archivable.

A calcfunction runs inside its daemon worker and keeps no checkpoint; when the worker dies mid-run its node stays
`running` and unsealed forever, and ``verdi archive create`` refuses any work chain that called it. With the daemon
stopped, an active process node without a checkpoint cannot be continued by anyone: it is an orphan. An active node
*with* a checkpoint is not: ``verdi process repair`` gives it back its broker task."""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ProcessState

ACTIVE_STATES = ('created', 'waiting', 'running')
ORPHAN_REASON = 'its process died with the daemon worker and can never continue; sealed by `aiida-glassml maintenance seal`'


def seal_as_excepted(node: orm.ProcessNode, reason: str) -> None:
    """Mark an unfinished process node excepted with ``reason`` and seal it; a terminated unsealed node is sealed."""
    if node.is_sealed:
        return
    if not node.is_terminated:
        node.set_process_state(ProcessState.EXCEPTED)
        node.set_exception(reason)
    node.seal()


def paused_reason(node: orm.ProcessNode) -> str | None:
    """Why a paused process waits, in one line: the last error line of its log (aiida pauses a CalcJob after its
    transport task failed several times, e.g. ``sbatch: error: invalid partition specified: gpu``), else its status;
    None when it is not paused."""
    if not node.paused:
        return None
    messages = [log.message for log in orm.Log.collection.get_logs_for(node)]
    for message in reversed(messages):  # the scheduler's own words: the stderr of the refused command
        if 'stderr=' in message:
            stderr = message.rsplit('stderr=', 1)[1]  # the last one: the traceback quotes the source line too
            lines = [line.strip() for line in stderr.splitlines() if 'error' in line.lower()]
            if lines:
                return '; '.join(dict.fromkeys(lines))
    errors = [line.strip() for message in messages for line in message.splitlines() if 'error' in line.lower()]
    return errors[-1] if errors else (node.process_status or 'paused')


def find_orphans() -> list[orm.ProcessNode]:
    """Active process nodes without a checkpoint, and terminated nodes left unsealed. Only meaningful with the daemon
    stopped and nothing running in the foreground: a live calcfunction also has no checkpoint."""
    query = orm.QueryBuilder().append(
        orm.ProcessNode, filters={'attributes.process_state': {'in': list(ACTIVE_STATES)}}, project='*'
    )
    orphans = [node for node in query.all(flat=True) if node.checkpoint is None]
    unsealed = orm.QueryBuilder().append(
        orm.ProcessNode,
        filters={'attributes.process_state': {'in': ['finished', 'excepted', 'killed']},
                 'or': [{'attributes': {'!has_key': 'sealed'}}, {'attributes.sealed': False}]},
        project='*',
    )  # fmt: skip
    return sorted({node.pk: node for node in [*orphans, *unsealed.all(flat=True)]}.values(), key=lambda n: n.pk)


def clear_stale_broker_files(profile=None) -> list[str]:
    """Remove the state files a killed ZeroMQ broker left behind (``broker.pid``, ``broker.status``,
    ``broker.sockets`` and the socket folder it names), when no broker service runs. The task queue is kept.

    Why: aiida-core 2.9 starts the broker and the workers together, and a worker connects to the socket that
    ``broker.sockets`` names as soon as that file exists. After a SIGKILL the file still names the dead broker's
    socket, so a worker that starts before the new broker rewrites it connects to nothing, never receives a task, and
    every process waits forever. Returns what was removed (nothing for another broker, or while a broker runs)."""
    import shutil

    from aiida.manage import get_manager

    profile = profile or get_manager().get_profile()
    if profile.process_control_backend != 'core.zeromq':
        return []
    from aiida.brokers.zeromq import ZeromqBroker
    from aiida.brokers.zeromq.service import ZeromqBrokerService
    from aiida.manage.configuration import get_config

    if ZeromqBroker(profile).check_service_reachable():
        return []
    layout = ZeromqBrokerService.FilepathLayout(get_config().filepaths(profile)['broker_service']['dir'])
    removed = []
    if layout.sockets_file.exists():
        sockets = pathlib.Path(layout.sockets_file.read_text().strip() or layout.sockets_file)
        if sockets.is_dir():
            shutil.rmtree(sockets, ignore_errors=True)
            removed.append(str(sockets))
    for path in (layout.sockets_file, layout.status_file, layout.pid_file):
        if path.exists():
            path.unlink()
            removed.append(str(path))
    return removed
