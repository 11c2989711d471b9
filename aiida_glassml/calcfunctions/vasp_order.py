"""Provenance for VASP's atom order: the structure VASP runs on, its kinds grouped.

aiida-vasp writes POSCAR and POTCAR per run of consecutive equal kinds, so an interleaved structure (an MD frame, a
published glass) would get one POTCAR and one LDAU entry per run. :func:`group_kinds` makes the grouped copy that
``LabelWorkChain`` gives ``VaspWorkChain``; the frames are mapped back to the original order when parsed
(:func:`aiida_glassml.labeling.vasp.frames_from_vasp_arrays`).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.labeling.vasp import species_sort_order

__all__ = ('group_kinds',)


@calcfunction
def group_kinds(structure: orm.StructureData) -> orm.StructureData:
    """``structure`` with its sites grouped by kind (kinds in order of first appearance, sites of a kind in their
    order); attribute ``atom_order``: grouped site ``i`` is site ``atom_order[i]`` of ``structure``."""
    from aiida.orm.nodes.data.structure import Site

    order = species_sort_order([site.kind_name for site in structure.sites])
    grouped = orm.StructureData(cell=structure.cell, pbc=structure.pbc)
    for kind in structure.kinds:
        grouped.append_kind(kind)
    for index in order:
        site = structure.sites[index]
        grouped.append_site(Site(kind_name=site.kind_name, position=site.position))
    grouped.base.attributes.set('atom_order', order)
    grouped.label = structure.label
    return grouped
