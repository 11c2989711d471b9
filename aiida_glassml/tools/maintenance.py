"""Process nodes that can never finish, and sealing them so that a profile stays archivable.

A calcfunction runs inside its daemon worker and keeps no checkpoint; when the worker dies mid-run its node stays
`running` and unsealed forever, and ``verdi archive create`` refuses any work chain that called it. With the daemon
stopped, an active process node without a checkpoint cannot be continued by anyone: it is an orphan. An active node
*with* a checkpoint is not: ``verdi process repair`` gives it back its broker task."""

from __future__ import annotations

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
