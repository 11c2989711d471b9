"""``ClassicalPotentialData``: a classical glass potential (charges, pair and three-body terms) with its references."""

from __future__ import annotations

import typing as t

from aiida.orm import Data

from aiida_glassml.md import potentials
from aiida_glassml.md.potentials import ClassicalPotential, PotentialError

__all__ = ('ClassicalPotentialData', 'PotentialError')


class ClassicalPotentialData(Data):
    """A classical potential from :mod:`aiida_glassml.md.potentials`, stored as attributes (``name``, ``form``,
    ``charges``, ``species_elements``, ``pairs``, ``three_body``, ``extra_pairs``, ``cutoff``, ``kspace``,
    ``kspace_accuracy``, ``references``, ``notes``) plus ``elements``.

    ``ClassicalPotentialData.from_library('bmp')`` gives a library potential; ``ClassicalPotentialData(potential)``
    wraps any :class:`ClassicalPotential` (e.g. :func:`potentials.custom` with its references).
    """

    def __init__(self, potential: ClassicalPotential | None = None, **kwargs):
        super().__init__(**kwargs)
        if potential is not None:
            if not potential.references:
                raise PotentialError(f'potential {potential.name!r} has no references; say where its parameters '
                                     'come from (the `references` field).')
            self.base.attributes.set_many({**potential.to_dict(), 'elements': potential.elements})

    @classmethod
    def from_library(cls, name: str, **kwargs) -> ClassicalPotentialData:
        """A library potential (``teter``, ``teter_fe``, ``bmp``, ``du``, ``du_fe``); keyword arguments go to the library
        function."""
        return cls(potentials.get_potential(name, **kwargs))

    def get_potential(self) -> ClassicalPotential:
        attributes = dict(self.base.attributes.all)
        attributes.pop('elements', None)
        attributes['pairs'] = dict(attributes['pairs'])
        attributes['three_body'] = tuple(
            {**term, 'ends': tuple(term['ends'])} for term in attributes.get('three_body', ())
        )
        return ClassicalPotential.from_dict(attributes)

    @property
    def name(self) -> str:
        return self.base.attributes.get('name')

    @property
    def elements(self) -> list[str]:
        return list(self.base.attributes.get('elements'))

    @property
    def references(self) -> list[str]:
        return list(self.base.attributes.get('references'))

    def check_covers(self, kinds: t.Sequence[tuple[str, str]]) -> list[str]:
        return self.get_potential().check_covers(kinds)
