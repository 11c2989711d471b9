"""Committees of ML potentials: N models of one kind (e.g. ACE fits on different seeded subsets of the data) whose
spread of predicted forces measures how far a structure is from what they were trained on.

Pure numpy/ASE, no AiiDA. :func:`force_deviation` is the measure of the Na3V2(PO4)3 committee study: per atom
``σ_i = sqrt(mean_k |F_ik - mean_k F_ik|²)`` (eV/Å), and per frame its maximum over atoms. :class:`CommitteeCalculator`
drives MD with the committee mean and reports both; :func:`check_committee` refuses committees that mix kinds or
element sets.
"""

from __future__ import annotations

import typing as t

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

#: properties a committee averages (those every member implements)
AVERAGED = ('energy', 'free_energy', 'forces', 'stress')


class CommitteeError(ValueError):
    """A committee that cannot work as one; the message names the problem and the fix."""


def force_deviation(forces) -> np.ndarray:
    """Per-atom force standard deviation across the committee, ``σ_i = sqrt(mean_k |F_ik - F̄_i|²)`` (eV/Å), from
    ``forces`` shaped (members, atoms, 3). The population deviation (divided by the number of members, not N-1)."""
    forces = np.asarray(forces, dtype=float)
    if forces.ndim != 3 or forces.shape[2] != 3 or forces.shape[0] < 2:
        raise CommitteeError(f'force_deviation needs forces of at least two members shaped (members, atoms, 3), '
                             f'got {forces.shape}.')  # fmt: skip
    deviation = forces - forces.mean(axis=0)
    return np.sqrt((deviation**2).sum(axis=2).mean(axis=0))


def max_force_deviation(forces) -> float:
    """``σ_F,max``: the largest per-atom force deviation of one frame (eV/Å)."""
    return float(force_deviation(forces).max())


def check_committee(members: t.Mapping[str, tuple[str, t.Sequence[str]]]) -> None:
    """``members``: label -> (kind, elements). At least two, all of one kind and one element set."""
    if len(members) < 2:
        raise CommitteeError(f'a committee needs at least two potentials, got {len(members)}; add members fitted '
                             'with different seeds.')  # fmt: skip
    kinds = {label: kind for label, (kind, _) in members.items()}
    if len(set(kinds.values())) > 1:
        raise CommitteeError(f'the committee mixes potential kinds {dict(sorted(kinds.items()))}; every member must '
                             'be the same kind of model (e.g. all ACE), differing only by seed or hyperparameters.')  # fmt: skip
    elements = {label: sorted(set(symbols)) for label, (_, symbols) in members.items()}
    if len({tuple(e) for e in elements.values()}) > 1:
        raise CommitteeError(f'the committee mixes element sets {dict(sorted(elements.items()))}; fit every member on '
                             'data with the same elements.')  # fmt: skip


class CommitteeCalculator(Calculator):
    """The mean energy, forces and stress of ``calculators`` (each evaluated on its own copy of the atoms), plus
    ``results['force_deviation']`` (per atom, eV/Å) and ``results['max_force_deviation']``."""

    def __init__(self, calculators: t.Sequence, **kwargs):
        if len(calculators) < 2:
            raise CommitteeError(f'a committee needs at least two calculators, got {len(calculators)}.')
        self.calculators = list(calculators)
        implemented = set(AVERAGED)
        for calc in self.calculators:
            implemented &= set(getattr(calc, 'implemented_properties', AVERAGED))
        if not {'energy', 'forces'} <= implemented:
            raise CommitteeError('every committee member must compute energy and forces.')
        self.implemented_properties = [p for p in AVERAGED if p in implemented]
        super().__init__(**kwargs)

    def calculate(self, atoms=None, properties=('energy', 'forces'), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        wanted = self.implemented_properties  # all at once: the members compute them together anyway
        values: dict[str, list] = {p: [] for p in wanted}
        for calc in self.calculators:
            copy = self.atoms.copy()
            copy.calc = calc
            for name in wanted:
                values[name].append(np.asarray(calc.get_property(name, copy), dtype=float))
        for name, stack in values.items():
            mean = np.mean(stack, axis=0)
            self.results[name] = float(mean) if mean.ndim == 0 else mean
        sigma = force_deviation(values['forces'])
        self.results['force_deviation'] = sigma
        self.results['max_force_deviation'] = float(sigma.max())
        self.results['member_energies'] = np.array([float(e) for e in values['energy']])
