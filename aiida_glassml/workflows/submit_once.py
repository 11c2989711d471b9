"""``SubmitOnceMixin``: a work chain step that a daemon crash interrupts is run again from the last checkpoint, and
would launch its children a second time. With this mixin a child whose ``call_link_label`` the node already has is
reused instead, so every run is launched once however often the worker dies (the orphan is picked up again by the
broker and finishes as usual)."""

from __future__ import annotations

from aiida.common.links import LinkType


class SubmitOnceMixin:
    """Put before ``WorkChain`` in the bases; give every child a unique ``metadata.call_link_label``."""

    def submit(self, process, inputs=None, **kwargs):
        metadata = kwargs.get('metadata') or (inputs or {}).get('metadata') or {}
        label = metadata.get('call_link_label')
        if label and label != 'CALL':
            previous = self.node.base.links.get_outgoing(
                link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK), link_label_filter=label
            ).all_nodes()
            if previous:
                node = previous[-1]
                self.report(f'{node.process_label}<{node.pk}> (`{label}`) was launched before this step was '
                            'interrupted; waiting for it instead of launching it again')  # fmt: skip
                return node
        return super().submit(process, inputs, **kwargs)
