"""Offline density estimate for oxide and sulfide glasses from additive molar volumes. Pure python, no network.

Model (ideal mixing of binary end members): each cation species M^q+ is charge-balanced by the anions in proportion
to their share of the anion charge, and contributes the molar volume per cation of the binary compound it would form
with each anion (Na+ with O2- -> Na2O, P5+ with S2- -> P2S5 ...). The molar volume of a compound is M / rho with the
molar mass from ASE's atomic masses and the crystal density from the table below::

    V_mix = sum_cations n_M sum_anions w_X  V(M_a X_b) / a,     rho = mass_mix / V_mix

where ``w_X`` is anion X's share of the anion charge. Crystal densities at room temperature are those tabulated in
W. M. Haynes (ed.), *CRC Handbook of Chemistry and Physics*, 97th ed., CRC Press (2016), section 4, "Physical
Constants of Inorganic Compounds" (P2O5 and P2S5 listed as P4O10 and P4S10). The estimate is a starting density for
random packing, not a prediction: for 0.25 Na2O + 0.5 FeO + 0.25 P2O5 it gives 3.11 g/cm3 against 3.38 g/cm3 for the
simulated NaFePO4 glass (Christensen et al., J. Mater. Chem. A 13 (2025) 24619), i.e. ~8% low, because the molecular
crystal P4O10 is far less dense than phosphate glass networks. Give the density explicitly when it is known.
"""

from __future__ import annotations

import typing as t

from .composition import Composition, StructureGenerationError, parse_formula

__all__ = ('DENSITY_SOURCE', 'END_MEMBER_DENSITIES', 'estimate_density', 'molar_mass', 'resolve_density')

DENSITY_SOURCE = (
    'additive molar volumes of binary end members (crystal densities: CRC Handbook of Chemistry and Physics, '
    '97th ed., 2016, Physical Constants of Inorganic Compounds)'
)

#: (cation, oxidation state, anion) -> (end-member compound, crystal density in g/cm3).
END_MEMBER_DENSITIES: dict[tuple[str, int, str], tuple[str, float]] = {
    ('Na', 1, 'O'): ('Na2O', 2.27),
    ('Na', 1, 'S'): ('Na2S', 1.856),
    ('Fe', 2, 'O'): ('FeO', 5.745),
    ('Fe', 2, 'S'): ('FeS', 4.84),
    ('Fe', 3, 'O'): ('Fe2O3', 5.25),
    ('P', 5, 'O'): ('P2O5', 2.39),
    ('P', 5, 'S'): ('P2S5', 2.09),
    ('V', 5, 'O'): ('V2O5', 3.35),
    ('V', 4, 'O'): ('VO2', 4.57),
    ('V', 3, 'O'): ('V2O3', 4.87),
}

_AVOGADRO = 6.02214076e23


def molar_mass(amounts: t.Mapping[str, float]) -> float:
    """g/mol of ``{element: amount}``."""
    from ase.data import atomic_masses, atomic_numbers

    return float(sum(atomic_masses[atomic_numbers[e]] * n for e, n in amounts.items()))


def estimate_density(composition: Composition) -> float:
    """Density in g/cm3 of ``composition`` from the additive end-member model (see the module docstring)."""
    species = composition.species_amounts
    anions = {(e, s): n for (e, s), n in species.items() if s < 0}
    cations = {(e, s): n for (e, s), n in species.items() if s > 0}
    anion_charge = sum(-s * n for (_, s), n in anions.items())
    if not cations or anion_charge == 0:
        raise StructureGenerationError(
            f'cannot estimate a density for {composition.label}: the additive model needs cations and anions; give '
            'the density explicitly.'
        )
    volume = 0.0  # cm3 per mole of formula units
    for (cation, state), amount in cations.items():
        for (anion, anion_state), anion_amount in anions.items():
            weight = -anion_state * anion_amount / anion_charge
            entry = END_MEMBER_DENSITIES.get((cation, state, anion))
            if entry is None:
                known = ', '.join(f'{c}{s:+d}/{a}' for c, s, a in END_MEMBER_DENSITIES)
                raise StructureGenerationError(
                    f'no end-member molar volume for {cation}{state:+d} with {anion} (known: {known}); give the '
                    'density explicitly, e.g. --density 3.38.'
                )
            compound, density = entry
            end_member = parse_formula(compound)
            volume += amount * weight * molar_mass(end_member) / density / end_member[cation]
    return molar_mass(composition.element_amounts) / volume


def resolve_density(composition: Composition, density: float | None) -> tuple[float, str]:
    """Return ``(density, source)``: the user's density (validated > 0) or the offline estimate."""
    if density is None:
        return estimate_density(composition), DENSITY_SOURCE
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise StructureGenerationError(f'density {density!r} is not a number; give g/cm3, e.g. 3.38.') from None
    if not value > 0 or value == float('inf'):
        raise StructureGenerationError(f'density {density!r} g/cm3 must be > 0 and finite; give e.g. 3.38.')
    return value, 'user'


def cell_volume(mass_amu: float, density: float) -> float:
    """Volume in Å^3 holding ``mass_amu`` (g/mol of the cell's atoms) at ``density`` g/cm3."""
    return mass_amu / _AVOGADRO / density * 1e24
