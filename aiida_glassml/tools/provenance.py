"""Provenance queries people ask: which labelling calculations stand behind a potential or a dataset."""

from __future__ import annotations

from aiida import orm

#: process types of the CalcJobs that make labels (DFT engines and the potential teacher)
LABELLING_PROCESS_TYPES = (
    'aiida.calculations:cp2k',
    'aiida.calculations:quantumespresso.pw',
    'aiida.calculations:vasp.vasp',
    'aiida.calculations:glassml.potential_label',
)


def labelling_calculations(node: orm.Node) -> list[orm.CalcJobNode]:
    """Every labelling CalcJob upstream of ``node`` (a potential, a training set, a figure), in one QueryBuilder query,
    oldest first. For a potential fitted by the active-learning loop these are the calculations whose frames it was
    fitted on: the loop keeps its held-out test set out of the fit, so test labels are not upstream."""
    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'uuid': node.uuid}, tag='target')
    query.append(orm.CalcJobNode, with_descendants='target', filters={'process_type': {'in': list(LABELLING_PROCESS_TYPES)}},
                 project='*')  # fmt: skip
    query.order_by({orm.CalcJobNode: {'ctime': 'asc'}})
    return query.all(flat=True)
