"""Provenance for random glass structures: calcfunctions around :mod:`aiida_glassml.structures`.

* :func:`random_structure` (composition Dict, seed Int, settings Dict) -> StructureData
* :func:`strained_copies` (StructureData, settings Dict) -> ``{'strain_0_80': StructureData, ...}``

Calling a calcfunction stores its inputs before it runs, so bad input would leave nodes behind. Use
:func:`run_random_structure`, :func:`run_strained_copies` and :func:`generate_composition_grid_structures`, which
validate everything first (composition, integer formula, density, cell, rigid units and the fast feasibility checks
of the packing, all cheap: no packing) and store nothing on bad input. A packing that passes those checks but still
stalls fails inside the calcfunction: its node is then stored as failed (exit status 310, the reason as exit
message) and the runners raise StructureGenerationError naming it.
"""

from __future__ import annotations

import json
import typing as t

from aiida import orm
from aiida.engine import ExitCode, calcfunction

from aiida_glassml.structures import StructureGenerationError, composition_grid, generate_random_structure
from aiida_glassml.structures.generate import (
    GeneratedStructure,
    plan_random_structure,
    strain,
    validate_seed,
    validate_settings,
)
from aiida_glassml.structures.packing import validate_strain_factors

__all__ = (
    'random_structure',
    'strained_copies',
    'run_random_structure',
    'run_strained_copies',
    'generate_composition_grid_structures',
    'default_group_label',
)

#: Attributes copied onto every structure (and its strained copies); density is rescaled for strained copies.
METADATA_ATTRIBUTES = ('composition', 'composition_label', 'integer_formula', 'seed', 'density', 'density_source',
                       'min_distance', 'pair_min_distances', 'units_geometry', 'ligand', 'tetrahedra')  # fmt: skip
#: Exit status of :func:`random_structure` when the packing stalls after passing the up-front checks.
PACKING_FAILED = 310


def _jsonable(value):
    import numpy as np

    try:
        return json.loads(json.dumps(value, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    except TypeError as exc:
        raise StructureGenerationError(
            f'settings {value!r} cannot be stored in a Dict ({exc}); use string keys, e.g. pair distances as "Na-O".'
        ) from None


def _structure_node(generated: GeneratedStructure) -> orm.StructureData:
    structure = orm.StructureData(ase=generated.atoms)
    species_kinds = generated.settings.get('species_kinds') or []
    if species_kinds:  # kinds named after the oxidation state (the generator's initial charges), e.g. V4 and V5
        structure = orm.StructureData(cell=generated.atoms.cell.array.tolist(), pbc=generated.atoms.pbc.tolist())
        states = generated.atoms.get_initial_charges()
        for symbol, position, state in zip(generated.atoms.get_chemical_symbols(), generated.atoms.positions, states):
            name = f'{symbol}{round(state):d}' if symbol in species_kinds else symbol
            structure.append_atom(position=position.tolist(), symbols=symbol, name=name)
    for key, value in _jsonable(generated.metadata()).items():
        structure.base.attributes.set(key, value)
    structure.label = f'{generated.formula.formula} seed {generated.seed}'
    structure.description = (
        f'random packing of {generated.composition.label} ({generated.formula.n_atoms} atoms) at '
        f'{generated.density:.4g} g/cm3 ({generated.density_source}), seed {generated.seed}'
    )
    return structure


@calcfunction
def random_structure(composition: orm.Dict, seed: orm.Int, settings: orm.Dict) -> orm.StructureData:
    """A seeded random packing of ``composition`` (units, fractions, oxidation_states) with ``settings`` (see
    :data:`aiida_glassml.structures.DEFAULT_SETTINGS`); the attributes record composition, seed and density.
    A packing that stalls gives exit status 310 with the reason as message (a failed node, not an exception)."""
    try:
        generated = generate_random_structure(composition.get_dict(), seed.value, settings.get_dict())
    except StructureGenerationError as exc:
        return ExitCode(PACKING_FAILED, str(exc))
    return _structure_node(generated)


@calcfunction
def strained_copies(structure: orm.StructureData, settings: orm.Dict) -> dict[str, orm.StructureData]:
    """Isotropic copies of ``structure`` with cell lengths scaled by ``settings['strains']`` (default 0.8, 1.0, 1.2),
    as outputs ``strain_0_80``, ``strain_1_00``, ``strain_1_20``."""
    factors = settings.get_dict().get('strains', [0.8, 1.0, 1.2])
    outputs = {}
    for key, atoms in strain(structure.get_ase(), factors).items():
        factor = atoms.info['strain_factor']
        copy = orm.StructureData(ase=atoms)
        for name in METADATA_ATTRIBUTES:
            value = structure.base.attributes.get(name, None)
            if value is not None:
                copy.base.attributes.set(name, value)
        if structure.base.attributes.get('density', None) is not None:
            copy.base.attributes.set('density', structure.base.attributes.get('density') / factor**3)
        copy.base.attributes.set('strain_factor', factor)
        copy.label = f'{structure.label} strain {factor:g}'.strip()
        outputs[key] = copy
    return outputs


def validate_strained_settings(settings: t.Mapping | None) -> dict:
    settings = dict(settings or {})
    unknown = sorted(set(settings) - {'strains'})
    if unknown:
        raise StructureGenerationError(f'unknown strained-copies setting(s) {unknown}; only `strains` is allowed.')
    return {'strains': list(validate_strain_factors(settings.get('strains', [0.8, 1.0, 1.2])))}


def run_random_structure(composition: t.Mapping, seed: int, settings: t.Mapping | None = None) -> orm.StructureData:
    """Validate (cheap checks, no packing), then run :func:`random_structure`; nothing is stored on bad input."""
    settings = _jsonable(dict(settings or {}))
    plan = plan_random_structure(composition, seed, settings)  # raises StructureGenerationError
    return _run_calcfunction(plan.composition.to_dict(), plan.seed, settings)


def _run_calcfunction(composition: dict, seed: int, settings: dict) -> orm.StructureData:
    """Run :func:`random_structure`; a stalled packing (stored as a failed node) raises StructureGenerationError."""
    result, node = random_structure.run_get_node(orm.Dict(composition), orm.Int(seed), orm.Dict(settings))
    if not node.is_finished_ok:
        raise StructureGenerationError(
            f'{node.exit_message} (the packing passed the up-front checks but stalled; random_structure<{node.pk}> '
            f'is stored as failed with exit status {node.exit_status}).'
        )
    return result


def run_strained_copies(structure: orm.StructureData, strains=(0.8, 1.0, 1.2)) -> dict[str, orm.StructureData]:
    """Validate the factors, then run :func:`strained_copies`."""
    settings = validate_strained_settings({'strains': list(strains)})
    if not isinstance(structure, orm.StructureData):
        raise StructureGenerationError(f'strained copies need a StructureData, got {type(structure).__name__}.')
    return strained_copies(structure, orm.Dict(settings))


def default_group_label(units: t.Sequence[str], step: float, seed: int, n_atoms: int) -> str:
    return f'glassml/structures/{"-".join(units)}/step{step:g}/atoms{n_atoms}/seed{seed}'


def generate_composition_grid_structures(
    units: t.Sequence[str],
    step: float | None = None,
    seed: int = 1,
    settings: t.Mapping | None = None,
    oxidation_states: t.Mapping | None = None,
    strains: t.Sequence[float] | None = None,
    group_label: str | None = None,
    include_edges: bool = True,
    compositions: t.Sequence[t.Mapping] | None = None,
    progress: t.Callable[[int, int, orm.StructureData], None] | None = None,
) -> tuple[orm.Group, list[orm.StructureData]]:
    """Random structures over a composition grid (``units`` at ``step``, or explicit ``compositions`` dicts), all in
    one Group labelled ``group_label`` (default :func:`default_group_label`).

    Point ``i`` uses seed ``seed + i``. With ``strains``, the group holds the strained copies of every structure
    (the 1.0 copy included) instead of the structures themselves. Every point is validated (cheap checks, no
    packing) before anything is stored; an existing group label is an error. ``progress(i, n, node)`` is called after
    each point. A packing that stalls although it passed the checks stops the grid with StructureGenerationError
    naming the point; the group keeps the structures stored before it.
    """
    seed = validate_seed(seed)
    user_settings = _jsonable(dict(settings or {}))
    settings = validate_settings(user_settings)
    if compositions is None:
        if step is None:
            raise StructureGenerationError('give a grid step (e.g. 0.1) or explicit compositions.')
        points = composition_grid(units, step, oxidation_states, include_edges)
    else:
        from aiida_glassml.structures import Composition

        points = [Composition.from_dict(c) for c in compositions]
    strain_settings = validate_strained_settings({'strains': list(strains)}) if strains else None
    label = group_label or default_group_label(
        units or points[0].units, step if step is not None else 0, seed, settings['n_atoms']
    )
    if orm.QueryBuilder().append(orm.Group, filters={'label': label}).count():
        raise StructureGenerationError(f'group {label!r} already exists; choose another group label.')
    for index, point in enumerate(points):
        try:
            plan_random_structure(point, seed + index, settings)
        except StructureGenerationError as exc:
            raise StructureGenerationError(f'grid point {index} ({point.label}): {exc}') from exc

    group = orm.Group(label=label, description=(
        f'random glass structures over {" - ".join(points[0].units)}'
        + (f' at step {step:g}' if compositions is None else '') + f', ~{settings["n_atoms"]} atoms, seeds {seed}..'
        f'{seed + len(points) - 1}' + (f', strained by {strain_settings["strains"]}' if strain_settings else '')
    )).store()  # fmt: skip
    group.base.extras.set_many({'units': list(points[0].units), 'step': step, 'seed': seed,
                                'settings': user_settings, 'strains': strains and list(strains)})  # fmt: skip
    nodes = []
    for index, point in enumerate(points):
        try:
            structure = _run_calcfunction(point.to_dict(), seed + index, user_settings)
        except StructureGenerationError as exc:
            raise StructureGenerationError(f'grid point {index} ({point.label}): {exc} Group {label!r} holds the '
                                           f'{len(nodes)} structures stored before it.') from exc  # fmt: skip
        members = list(strained_copies(structure, orm.Dict(strain_settings)).values()) if strain_settings else [structure]
        group.add_nodes(members)
        nodes.extend(members)
        if progress is not None:
            progress(index + 1, len(points), structure)
    return group, nodes
