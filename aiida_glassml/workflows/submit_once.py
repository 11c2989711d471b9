"""``SubmitOnceMixin``: a work chain step that a daemon crash interrupts is run again from the last checkpoint, and
would launch its children a second time. With this mixin a child whose ``call_link_label`` the node already has is
reused instead, so every run is launched once however often the worker dies.

A crash can also cut a launch short: the child's node is stored (with its CALL link) before its checkpoint and its
broker task exist. Such a child can never run, so it is marked excepted, sealed (so the profile stays archivable)
and launched again. A child with a checkpoint is reused; if the crash took its broker task with it,
``verdi process repair`` (daemon stopped) sends the task again, as after any daemon crash."""

from __future__ import annotations

from aiida.common.links import LinkType
from aiida.engine.processes.builder import ProcessBuilder

from aiida_glassml.tools.maintenance import seal_as_excepted

INTERRUPTED_LAUNCH = 'the daemon died while this process was being launched; its parent launched it again'


def is_reusable(node) -> bool:
    """Whether a child found under the step's call label can stand for a new launch: it finished, or it has a
    checkpoint to continue from. An excepted child (e.g. a half-made launch revived and refused) is launched again."""
    if node.is_terminated:
        return not node.is_excepted
    return node.checkpoint is not None


class SubmitOnceMixin:
    """Put before ``WorkChain`` in the bases; give every child a unique ``metadata.call_link_label``."""

    def submit(self, process, inputs=None, **kwargs):
        if isinstance(process, ProcessBuilder):  # `self.submit(builder)`: the label is in the builder
            metadata = process.metadata
        else:
            metadata = kwargs.get('metadata') or (inputs or {}).get('metadata') or {}
        label = metadata.get('call_link_label')
        if label and label != 'CALL':
            previous = sorted(
                self.node.base.links.get_outgoing(
                    link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK), link_label_filter=label
                ).all_nodes(),
                key=lambda node: node.pk,
            )
            if previous:
                node = previous[-1]
                if is_reusable(node):
                    self.report(f'{node.process_label}<{node.pk}> (`{label}`) was launched before this step was '
                                'interrupted; waiting for it instead of launching it again')  # fmt: skip
                    return node
                seal_as_excepted(node, INTERRUPTED_LAUNCH)
                self.report(f'{node.process_label}<{node.pk}> (`{label}`) was cut short while being launched '
                            f'(state {getattr(node.process_state, "value", None)}); it is kept, sealed, and launched again')  # fmt: skip
        return super().submit(process, inputs, **kwargs)
