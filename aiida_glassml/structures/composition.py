"""Glass compositions from formula units: parsing, mole fractions, grids, oxidation states, charge balance and the
integer formula with about N atoms. Pure python/numpy, no AiiDA imports.

A :class:`Composition` is a mixture of formula units (``Na2O``, ``FeO``, ``P2O5`` or ``NaO0.5``, ``PO2.5`` ...) with
mole fractions summing to one. Oxidation states default to :data:`DEFAULT_OXIDATION_STATES` and can be overridden per
element with a single integer state (``{'Fe': 3}``) or a mixed-valence split by fraction (``{'V': {4: 0.3, 5: 0.7}}``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import typing as t

import numpy as np

__all__ = (
    'DEFAULT_OXIDATION_STATES',
    'StructureGenerationError',
    'Composition',
    'IntegerFormula',
    'parse_formula',
    'format_formula',
    'substitute_anion',
    'normalise_oxidation_states',
    'composition_grid',
    'integer_formula',
)

#: Oxidation states used unless overridden.
DEFAULT_OXIDATION_STATES: dict[str, int] = {'Na': 1, 'Fe': 2, 'P': 5, 'O': -2, 'S': -2, 'V': 5}

FRACTION_SUM_TOLERANCE = 1e-6
_NEUTRALITY_TOLERANCE = 1e-6


class StructureGenerationError(ValueError):
    """Bad input for composition, density, packing or strain; the message names the problem and the fix."""


def _chemical_symbols() -> frozenset[str]:
    from ase.data import chemical_symbols

    return frozenset(chemical_symbols[1:])


_TOKEN = re.compile(r'([A-Z][a-z]?|\(|\))(\d+(?:\.\d*)?|\.\d+)?')


def parse_formula(formula: str) -> dict[str, float]:
    """Return ``{element: amount}`` for a formula unit such as ``Na2O``, ``PO2.5`` or ``Na4P2S5.5O1.5``.

    Parentheses nest (``Fe2(SO4)3``); amounts may be fractional. Raises :class:`StructureGenerationError` for text that
    is not a formula or names an unknown element.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise StructureGenerationError(f'formula unit {formula!r} is empty; give a formula such as `Na2O` or `PO2.5`.')
    text = formula.strip()
    stack: list[dict[str, float]] = [{}]
    position = 0
    symbols = _chemical_symbols()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise StructureGenerationError(
                f'cannot parse formula unit {formula!r} at {text[position:]!r}; write units as element symbols with '
                'optional amounts, e.g. `Na2O`, `NaO0.5`, `P2S5`.'
            )
        token, amount_text = match.groups()
        amount = float(amount_text) if amount_text else 1.0
        if token == '(':
            if amount_text:
                raise StructureGenerationError(f'misplaced amount after `(` in formula unit {formula!r}.')
            stack.append({})
        elif token == ')':
            if len(stack) == 1:
                raise StructureGenerationError(f'unbalanced `)` in formula unit {formula!r}.')
            group = stack.pop()
            for element, value in group.items():
                stack[-1][element] = stack[-1].get(element, 0.0) + value * amount
        else:
            if token not in symbols:
                raise StructureGenerationError(
                    f'unknown element {token!r} in formula unit {formula!r}; use element symbols with the right '
                    'capitalisation, e.g. `Na2O` not `NA2O`.'
                )
            stack[-1][token] = stack[-1].get(token, 0.0) + amount
        position = match.end()
    if len(stack) != 1:
        raise StructureGenerationError(f'unbalanced `(` in formula unit {formula!r}.')
    result = {element: amount for element, amount in stack[0].items() if amount != 0}
    if not result or any(amount < 0 for amount in result.values()):
        raise StructureGenerationError(f'formula unit {formula!r} has no atoms; give e.g. `Na2O`.')
    return result


def format_formula(amounts: t.Mapping[str, float], digits: int = 4) -> str:
    """Write ``{element: amount}`` as a formula string, omitting amounts of one (``NaFePO4``, ``Na4P2S6.5O0.5``)."""
    parts = []
    for element, amount in amounts.items():
        value = round(float(amount), digits)
        if value == 0:
            continue
        text = '' if value == 1 else (f'{int(value)}' if value == int(value) else f'{value:g}')
        parts.append(f'{element}{text}')
    return ''.join(parts)


def substitute_anion(formula: str, old: str, new: str, amount: float) -> str:
    """Replace ``amount`` of anion ``old`` by ``new`` in ``formula``: ``substitute_anion('Na4P2S7', 'S', 'O', 1.5)``
    gives ``Na4P2S5.5O1.5`` (the mixed-anion series Na4P2S7-xOx)."""
    amounts = parse_formula(formula)
    available = amounts.get(old, 0.0)
    if amount < 0 or amount > available + 1e-12:
        raise StructureGenerationError(
            f'cannot replace {amount:g} {old} in {formula}: it has {available:g}; choose 0 <= x <= {available:g}.'
        )
    amounts[old] = available - amount
    amounts[new] = amounts.get(new, 0.0) + amount
    return format_formula(amounts)


OxidationStates = dict[str, tuple[tuple[int, float], ...]]


def _parse_state(value, element: str) -> int:
    """Accept 3, 3.0, '+3', '3+', '-2', '2-'."""
    text = str(value).strip()
    match = re.fullmatch(r'([+-]?)(\d+)(\.0*)?([+-]?)', text)
    if match is None or (match.group(1) and match.group(4)):
        raise StructureGenerationError(
            f'oxidation state {value!r} for {element} is not an integer; give e.g. `{element}=+3`, or split mixed '
            f'valence by fraction as {{"{element}": {{"4": 0.3, "5": 0.7}}}}.'
        )
    sign = -1 if '-' in (match.group(1) + match.group(4)) else 1
    return sign * int(match.group(2))


def normalise_oxidation_states(overrides: t.Mapping | None = None) -> OxidationStates:
    """Merge ``overrides`` into the defaults and return ``{element: ((state, fraction), ...)}``.

    An override is an integer state (``{'Fe': 3}``, ``{'Fe': '+3'}``) or a split by fraction
    (``{'V': {4: 0.3, 5: 0.7}}``, string keys allowed); split fractions must be >= 0 and sum to 1.
    """
    states: OxidationStates = {element: ((state, 1.0),) for element, state in DEFAULT_OXIDATION_STATES.items()}
    symbols = _chemical_symbols()
    for element, value in (overrides or {}).items():
        if element not in symbols:
            raise StructureGenerationError(
                f'unknown element {element!r} in the oxidation states; use element symbols such as `Fe` or `V`.'
            )
        if isinstance(value, t.Mapping):
            split = [(_parse_state(state, element), float(fraction)) for state, fraction in value.items()]
            if not split or any(not math.isfinite(f) or f < 0 for _, f in split):
                raise StructureGenerationError(
                    f'the oxidation-state split for {element} has negative or missing fractions {dict(value)}; give '
                    f'fractions >= 0, e.g. {{"4": 0.3, "5": 0.7}}.'
                )
            total = sum(f for _, f in split)
            if abs(total - 1) > FRACTION_SUM_TOLERANCE:
                raise StructureGenerationError(
                    f'the oxidation-state fractions for {element} sum to {total:g}, not 1; rescale them.'
                )
            merged: dict[int, float] = {}
            for state, fraction in split:
                merged[state] = merged.get(state, 0.0) + fraction
            states[element] = tuple(sorted((s, f) for s, f in merged.items() if f > 0))
        else:
            states[element] = ((_parse_state(value, element), 1.0),)
    return states


def _states_to_json(states: OxidationStates) -> dict:
    return {
        element: (split[0][0] if len(split) == 1 else {str(state): fraction for state, fraction in split})
        for element, split in states.items()
    }


@dataclasses.dataclass(frozen=True)
class Composition:
    """A mixture of formula units with mole fractions summing to one, and the oxidation states that balance it.

    Build with :meth:`from_units` (validates everything) rather than the constructor.
    """

    units: tuple[str, ...]
    fractions: tuple[float, ...]
    oxidation_states: t.Mapping[str, tuple[tuple[int, float], ...]]
    overrides: t.Mapping = dataclasses.field(default_factory=dict)

    @classmethod
    def from_units(
        cls,
        units: t.Sequence[str],
        fractions: t.Sequence[float] | None,
        oxidation_states: t.Mapping | None = None,
        check_neutral: bool = True,
    ) -> Composition:
        """Validate units, fractions (>= 0, summing to 1 within 1e-6), elements, oxidation states and neutrality."""
        if isinstance(units, str):
            units = [u for u in units.split(',') if u.strip()]
        units = tuple(str(u).strip() for u in (units or ()))
        if not units:
            raise StructureGenerationError('no formula units given; name them, e.g. units Na2O, FeO, P2O5.')
        if len(set(units)) != len(units):
            raise StructureGenerationError(f'formula units {units} repeat; name each unit once.')
        if fractions is None or len(fractions) == 0:
            raise StructureGenerationError(
                f'no mole fractions given for units {", ".join(units)}; give one fraction per unit summing to 1.'
            )
        if len(fractions) != len(units):
            raise StructureGenerationError(
                f'{len(fractions)} fractions for {len(units)} units ({", ".join(units)}); give one fraction per unit.'
            )
        try:
            values = tuple(float(f) for f in fractions)
        except (TypeError, ValueError):
            raise StructureGenerationError(f'fractions {list(fractions)} are not all numbers; give numbers.') from None
        if any(v is None or not math.isfinite(v) for v in values):
            raise StructureGenerationError(f'fractions {list(values)} contain a missing value; give finite numbers.')
        negative = [f'{u}={v:g}' for u, v in zip(units, values) if v < 0]
        if negative:
            raise StructureGenerationError(
                f'negative mole fraction(s) {", ".join(negative)}; fractions must be >= 0 and sum to 1.'
            )
        total = sum(values)
        if abs(total - 1.0) > FRACTION_SUM_TOLERANCE:
            raise StructureGenerationError(
                f'mole fractions of {", ".join(units)} sum to {total:.8g}, not 1 (tolerance 1e-6); rescale them.'
            )
        for unit in units:
            parse_formula(unit)
        composition = cls(units, values, normalise_oxidation_states(oxidation_states), dict(oxidation_states or {}))
        missing = sorted(set(composition.element_amounts) - set(composition.oxidation_states))
        if missing:
            raise StructureGenerationError(
                f'no oxidation state for {", ".join(missing)}; defaults exist only for '
                f'{", ".join(DEFAULT_OXIDATION_STATES)}: pass e.g. oxidation_states={{"{missing[0]}": 1}}.'
            )
        if check_neutral:
            composition.check_neutral()
        return composition

    @classmethod
    def from_formula(
        cls, formula: str, units: t.Sequence[str] | None = None, oxidation_states: t.Mapping | None = None
    ) -> Composition:
        """Write ``formula`` (e.g. ``Na4P2S5.5O1.5``) as a mixture of ``units`` (e.g. Na2S, P2S5, P2O5) with
        non-negative fractions; without units, the formula is its own single unit."""
        if not units:
            return cls.from_units([formula], [1.0], oxidation_states)
        from scipy.optimize import nnls

        target = parse_formula(formula)
        parsed = [parse_formula(u) for u in units]
        elements = sorted(set(target).union(*parsed))
        matrix = np.array([[p.get(e, 0.0) for p in parsed] for e in elements])
        vector = np.array([target.get(e, 0.0) for e in elements])
        amounts, residual = nnls(matrix, vector)
        if residual > 1e-8 * max(1.0, np.linalg.norm(vector)):
            raise StructureGenerationError(
                f'{formula} cannot be written as a mixture of {", ".join(units)} (residual {residual:.3g}); add a '
                'unit that supplies the missing elements.'
            )
        return cls.from_units(units, list(amounts / amounts.sum()), oxidation_states)

    @property
    def unit_amounts(self) -> list[dict[str, float]]:
        return [parse_formula(u) for u in self.units]

    @property
    def element_amounts(self) -> dict[str, float]:
        """Moles of each element per mole of formula units (zero-fraction units dropped)."""
        amounts: dict[str, float] = {}
        for fraction, unit in zip(self.fractions, self.unit_amounts):
            if fraction == 0:
                continue
            for element, count in unit.items():
                amounts[element] = amounts.get(element, 0.0) + fraction * count
        order = list(amounts)  # cations in order of appearance, then anions
        anion = {e: all(s < 0 for s, _ in self.oxidation_states.get(e, ((0, 1.0),))) for e in order}
        return {e: amounts[e] for e in sorted(order, key=lambda e: (anion[e], order.index(e)))}

    @property
    def atomic_fractions(self) -> dict[str, float]:
        amounts = self.element_amounts
        total = sum(amounts.values())
        return {element: amount / total for element, amount in amounts.items()}

    @property
    def species_amounts(self) -> dict[tuple[str, int], float]:
        """Moles of each (element, oxidation state) per mole of formula units; a split valence gives several."""
        return {
            (element, state): amount * fraction
            for element, amount in self.element_amounts.items()
            for state, fraction in self.oxidation_states[element]
        }

    @property
    def net_charge(self) -> float:
        """Net charge, in e per mole of formula units."""
        return float(sum(amount * state for (_, state), amount in self.species_amounts.items()))

    def check_neutral(self) -> None:
        charge = self.net_charge
        scale = sum(abs(amount * state) for (_, state), amount in self.species_amounts.items())
        if abs(charge) > _NEUTRALITY_TOLERANCE * max(1.0, scale):
            states = ' '.join(f'{e}{s:+d}' + (f'({f:g})' if f != 1 else '') for e, sp in self.oxidation_states.items()
                              if e in self.element_amounts for s, f in sp)  # fmt: skip
            raise StructureGenerationError(
                f'composition {self.label} is not charge neutral: net charge {charge:+.6g} e per mole of units with '
                f'oxidation states {states}; fix the fractions or override the oxidation states.'
            )

    @property
    def label(self) -> str:
        return ' + '.join(f'{f:g} {u}' for u, f in zip(self.units, self.fractions) if f > 0)

    @property
    def formula(self) -> str:
        """Element amounts per mole of units, e.g. ``Na0.5Fe0.5P0.5O2`` for 0.25 Na2O + 0.5 FeO + 0.25 P2O5."""
        return format_formula(self.element_amounts)

    def to_dict(self) -> dict:
        """JSON-friendly form (the ``composition`` Dict of the calcfunctions); :meth:`from_dict` inverts it."""
        return {
            'units': list(self.units),
            'fractions': list(self.fractions),
            'oxidation_states': _states_to_json({e: self.oxidation_states[e] for e in sorted(self.element_amounts)}),
        }

    @classmethod
    def from_dict(cls, data: t.Mapping) -> Composition:
        if not isinstance(data, t.Mapping):
            raise StructureGenerationError(f'composition must be a mapping with units and fractions, got {data!r}.')
        unknown = set(data) - {'units', 'fractions', 'oxidation_states'}
        if unknown:
            raise StructureGenerationError(
                f'unknown composition key(s) {sorted(unknown)}; allowed: units, fractions, oxidation_states.'
            )
        if 'units' not in data:
            raise StructureGenerationError('composition has no `units`; give e.g. ["Na2O", "FeO", "P2O5"].')
        return cls.from_units(data['units'], data.get('fractions'), data.get('oxidation_states'))


def composition_grid(
    units: t.Sequence[str], step: float, oxidation_states: t.Mapping | None = None, include_edges: bool = True
) -> list[Composition]:
    """Every composition of ``units`` whose fractions are multiples of ``step``: a ternary at 0.1 has 66 points,
    corners and edges included (``include_edges=False`` keeps only points with every unit present)."""
    units = list(units)
    if len(units) < 2:
        raise StructureGenerationError(f'a grid needs at least two units, got {units}; name two or more.')
    if not (isinstance(step, (int, float)) and 0 < step <= 1):
        raise StructureGenerationError(f'grid step {step!r} must be in (0, 1]; give e.g. 0.1 for 10 mol%.')
    divisions = round(1 / step)
    if abs(divisions * step - 1) > 1e-9:
        raise StructureGenerationError(f'grid step {step:g} does not divide 1; choose e.g. 0.1, 0.125, 0.2, 0.25.')
    points = []
    for parts in itertools.product(range(divisions + 1), repeat=len(units) - 1):
        rest = divisions - sum(parts)
        if rest < 0:
            continue
        counts = (*parts, rest)
        if not include_edges and min(counts) == 0:
            continue
        points.append(Composition.from_units(units, [c / divisions for c in counts], oxidation_states))
    return points


@dataclasses.dataclass(frozen=True)
class IntegerFormula:
    """Integer atom counts per (element, oxidation state), exactly neutral, with the realised composition next to the
    requested one."""

    species_counts: dict[tuple[str, int], int]
    requested_atomic_fractions: dict[str, float]
    realised_atomic_fractions: dict[str, float]
    realised_unit_fractions: dict[str, float]
    requested_unit_fractions: dict[str, float]

    @property
    def element_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (element, _), count in self.species_counts.items():
            counts[element] = counts.get(element, 0) + count
        return counts

    @property
    def n_atoms(self) -> int:
        return int(sum(self.species_counts.values()))

    @property
    def formula(self) -> str:
        return ''.join(f'{e}{n}' for e, n in self.element_counts.items())

    @property
    def net_charge(self) -> int:
        return int(sum(state * count for (_, state), count in self.species_counts.items()))

    @property
    def max_deviation(self) -> float:
        """Largest absolute difference between realised and requested atomic fractions."""
        return max(abs(self.realised_atomic_fractions[e] - f) for e, f in self.requested_atomic_fractions.items())

    def symbols(self) -> list[str]:
        return [element for (element, _), count in self.species_counts.items() for _ in range(count)]

    def oxidation_state_per_atom(self) -> list[int]:
        return [state for (_, state), count in self.species_counts.items() for _ in range(count)]

    def to_dict(self) -> dict:
        return {
            'formula': self.formula,
            'n_atoms': self.n_atoms,
            'element_counts': self.element_counts,
            'species_counts': {f'{e}{s:+d}': n for (e, s), n in self.species_counts.items()},
            'requested_atomic_fractions': self.requested_atomic_fractions,
            'realised_atomic_fractions': self.realised_atomic_fractions,
            'requested_unit_fractions': self.requested_unit_fractions,
            'realised_unit_fractions': self.realised_unit_fractions,
            'max_deviation': self.max_deviation,
        }


_SIZE_PENALTY = 0.05  # composition error (L1 of atomic fractions) worth trading for 100% of atom-count mismatch


def integer_formula(
    composition: Composition, n_atoms: int, window: int | None = None, tolerance: float = 0.02
) -> IntegerFormula:
    """Integer, exactly neutral counts of every species with about ``n_atoms`` atoms, closest to ``composition``.

    Totals within ``window`` atoms of ``n_atoms`` (default 5%, at least 2) are tried; for each, the rounded counts are
    nudged by up to +-2 atoms per species, and the neutral candidate with every species present minimising
    ``L1(atomic fractions) + 0.05 |total - n_atoms| / n_atoms`` wins. Raises :class:`StructureGenerationError` when no
    candidate contains every species, or the best deviates by more than ``tolerance`` in any atomic fraction.
    """
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 1:
        raise StructureGenerationError(f'target atom count {n_atoms!r} must be a positive integer, e.g. 100 or 3003.')
    species = list(composition.species_amounts)
    amounts = np.array([composition.species_amounts[s] for s in species])
    charges = np.array([state for _, state in species])
    target = amounts / amounts.sum()
    window = max(2, round(0.05 * n_atoms)) if window is None else int(window)
    totals = np.arange(max(1, n_atoms - window), n_atoms + window + 1)
    reach = 2 if len(species) <= 5 else 1
    offsets = np.array(list(itertools.product(range(-reach, reach + 1), repeat=len(species))))
    counts = np.rint(totals[:, None, None] * target[None, None, :]).astype(np.int64) + offsets[None, :, :]
    counts = counts.reshape(-1, len(species))
    valid = (counts >= 1).all(axis=1) & (counts @ charges == 0)
    sizes = counts.sum(axis=1)
    valid &= np.abs(sizes - n_atoms) <= window
    element_names = sorted(composition.element_amounts)
    requested_atomic = {e: composition.atomic_fractions[e] for e in element_names}
    minimum = int(math.ceil(1 / target.min()))
    if not valid.any():
        raise StructureGenerationError(
            f'{n_atoms} atoms are too few to realise {composition.label} as a neutral formula containing every '
            f'species (the rarest is {100 * target.min():.2g}% of atoms, needing at least ~{minimum} atoms); '
            'increase the atom count.'
        )
    candidates = counts[valid]
    sizes = sizes[valid]
    errors = np.abs(candidates / sizes[:, None] - target[None, :]).sum(axis=1)
    cost = errors + _SIZE_PENALTY * np.abs(sizes - n_atoms) / n_atoms
    best = candidates[np.lexsort((np.abs(sizes - n_atoms), cost))[0]]
    species_counts = {s: int(n) for s, n in zip(species, best)}
    total = int(best.sum())
    element_counts: dict[str, int] = {}
    for (element, _), count in species_counts.items():
        element_counts[element] = element_counts.get(element, 0) + count
    realised_atomic = {e: element_counts[e] / total for e in element_names}
    result = IntegerFormula(
        species_counts=species_counts,
        requested_atomic_fractions=requested_atomic,
        realised_atomic_fractions=realised_atomic,
        realised_unit_fractions=_unit_fractions(composition, element_counts),
        requested_unit_fractions=dict(zip(composition.units, composition.fractions)),
    )
    if result.max_deviation > tolerance:
        raise StructureGenerationError(
            f'{n_atoms} atoms are too few to realise {composition.label}: the closest neutral formula '
            f'{result.formula} deviates by {result.max_deviation:.3g} in atomic fraction (tolerance {tolerance:g}); '
            f'increase the atom count (the rarest species needs ~{minimum} atoms) or raise the tolerance.'
        )
    return result


def _unit_fractions(composition: Composition, element_counts: t.Mapping[str, int]) -> dict[str, float]:
    """Best non-negative mixture of the composition's units reproducing ``element_counts`` (least squares)."""
    from scipy.optimize import nnls

    units = composition.unit_amounts
    elements = sorted(set(element_counts).union(*units))  # absent elements pin zero-fraction units at zero
    matrix = np.array([[unit.get(e, 0.0) for unit in units] for e in elements])
    amounts, _ = nnls(matrix, np.array([element_counts.get(e, 0) for e in elements], dtype=float))
    if amounts.sum() == 0:
        return dict.fromkeys(composition.units, 0.0)
    return {u: float(a / amounts.sum()) for u, a in zip(composition.units, amounts)}
