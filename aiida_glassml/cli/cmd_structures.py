"""``aiida-glassml structures generate``: random glass structures, one composition or a whole grid, with provenance."""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.utils import decorators

from . import cli
from .utils import check_output_file, fail


@cli.group('structures')
def structures():
    """Random glass structures over composition space (calcfunctions, stored with provenance)."""


def _split_floats(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(',') if v.strip()]
    except ValueError:
        fail(f'{name} {text!r} must be comma-separated numbers, e.g. 0.25,0.5,0.25.')


def _parse_oxidation_states(values) -> dict:
    """``Fe=+3`` or ``V=+4:0.3,+5:0.7``."""
    states: dict = {}
    for value in values:
        element, sep, spec = value.partition('=')
        if not sep or not element.strip() or not spec.strip():
            fail(f'oxidation state {value!r} must look like Fe=+3 or V=+4:0.3,+5:0.7.')
        if ':' in spec:
            split = {}
            for part in spec.split(','):
                state, _, fraction = part.partition(':')
                try:
                    split[state.strip()] = float(fraction)
                except ValueError:
                    fail(f'oxidation state split {value!r} must look like V=+4:0.3,+5:0.7.')
            states[element.strip()] = split
        else:
            states[element.strip()] = spec.strip()
    return states


def _parse_pairs(values) -> dict:
    pairs = {}
    for value in values:
        pair, sep, distance = value.partition('=')
        try:
            pairs[pair.strip()] = float(distance)
        except ValueError:
            fail(f'pair distance {value!r} must look like Na-O=2.0 (Å).')
        if not sep:
            fail(f'pair distance {value!r} must look like Na-O=2.0 (Å).')
    return pairs


@structures.command('generate')
@click.option('--units', required=True, help='Comma-separated formula units, e.g. NaO0.5,FeO,PO2.5 (the NaFePO4 study) or Na2O,FeO,P2O5.')
@click.option('--fractions', default=None, help='Mole fractions of the units, summing to 1, e.g. 0.25,0.5,0.25.')
@click.option('--formula', default=None,
              help='A target formula written as a mixture of the units instead of --fractions, e.g. Na4P2S5.5O1.5.')
@click.option('--grid-step', type=float, default=None,
              help='Instead of one composition, every composition of the units at this step (0.1: 66 ternary points).')
@click.option('--atoms', 'n_atoms', type=int, default=100, show_default=True, help='Target atom count.')
@click.option('--density', type=float, default=None, help='g/cm3; estimated offline from molar volumes when omitted.')
@click.option('--seed', type=int, default=1, show_default=True, help='Random seed (grid point i uses seed + i).')
@click.option('--min-distance', type=float, default=1.7, show_default=True, help='Minimum distance between atoms, Å.')
@click.option('--pair-distance', multiple=True, help='Per-pair minimum distance, e.g. --pair-distance Na-O=2.0.')
@click.option('--oxidation-state', multiple=True,
              help='Override an oxidation state: Fe=+3, or a mixed valence split V=+4:0.3,+5:0.7.')
@click.option('--cell', default=None,
              help='Cell shape, Å: three lengths (a,b,c) or nine numbers (three lattice vectors), comma-separated; '
                   'scaled to --density when given, otherwise its volume sets the density.')
@click.option('--units-geometry', type=click.Choice(['atoms', 'tetrahedra']), default='atoms', show_default=True,
              help='tetrahedra: pack each network former (P, S, V, Si with a positive oxidation state) as a rigid XO4 '
                   'tetrahedron, the other atoms singly.')
@click.option('--strains', default=None,
              help='Also store isotropic copies with cell lengths scaled by these factors, e.g. 0.8,1.0,1.2.')
@click.option('--group-label', default=None, help='Group for the structures (grids always get one).')
@click.option('--output', type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help='Also write the stored structures to this file (extxyz, readable by ase.io.read).')
@decorators.with_dbenv()
def generate(units, fractions, formula, grid_step, n_atoms, density, seed, min_distance, pair_distance,
             oxidation_state, cell, units_geometry, strains, group_label, output):  # fmt: skip
    """Generate, store and optionally write random glass structures.

    \b
    One composition:  --units NaO0.5,FeO,PO2.5 --formula NaFePO4 --atoms 3003 --density 3.38 --seed 1
    A whole diagram:  --units NaO0.5,FeO,PO2.5 --grid-step 0.1 --atoms 112   (the NaFePO4 study's 66 points)
    Mixed anions:     --units Na2S,P2S5,P2O5 --formula Na4P2S5.5O1.5 --atoms 245
    """
    from aiida_glassml.calcfunctions.structures import generate_composition_grid_structures
    from aiida_glassml.structures import Composition, StructureGenerationError
    from aiida_glassml.structures.packing import validate_strain_factors

    unit_list = [u.strip() for u in units.split(',') if u.strip()]
    modes = [name for name, value in (('--fractions', fractions), ('--formula', formula), ('--grid-step', grid_step))
             if value is not None]  # fmt: skip
    if len(modes) != 1:
        fail(f'give exactly one of --fractions, --formula or --grid-step (got {", ".join(modes) or "none"}).')
    settings = {'n_atoms': n_atoms, 'density': density, 'min_distance': min_distance,
                'pair_min_distances': _parse_pairs(pair_distance)}  # fmt: skip
    if cell is not None:
        settings['cell'] = _parse_cell(cell)
    if units_geometry != 'atoms':
        settings['units_geometry'] = units_geometry
    states = _parse_oxidation_states(oxidation_state)
    strain_factors = _split_floats(strains, '--strains')
    if output is not None:
        check_output_file(output)  # before anything is stored

    try:
        if strain_factors is not None:
            strain_factors = list(validate_strain_factors(strain_factors))
        if grid_step is not None:
            compositions = None
        elif formula is not None:
            compositions = [Composition.from_formula(formula, unit_list, states).to_dict()]
        else:
            compositions = [Composition.from_units(unit_list, _split_floats(fractions, '--fractions'), states).to_dict()]
        total = len(compositions) if compositions else None
        click.echo(f'Checking {"the composition grid" if total is None else "the composition"}...')
        with click.progressbar(length=total or 1, label='Storing structures', show_pos=True) as bar:

            def progress(index, count, node):
                bar.length = count
                bar.update(1)

            group, nodes = _run(generate_composition_grid_structures, unit_list, grid_step, seed, settings, states,
                                strain_factors, group_label, compositions, progress)  # fmt: skip
    except StructureGenerationError as exc:
        fail(str(exc))

    for node in nodes:
        strain = node.base.attributes.get('strain_factor', None)
        click.echo(f'Stored StructureData<{node.pk}> {node.uuid}: {node.get_formula(mode="hill")} '
                   f'({len(node.sites)} atoms, {node.base.attributes.get("density"):.4g} g/cm3, '
                   f'seed {node.base.attributes.get("seed")}' + (f', strain {strain:g}' if strain else '') + ')')  # fmt: skip
        if strain in (None, 1.0):
            click.echo(f'  {_composition_line(node)}')
    if group is not None:
        click.echo(f'Group<{group.pk}> {group.label!r}: {len(nodes)} structures')
    if output is not None:
        _write(output, nodes)
        click.echo(f'Wrote {len(nodes)} structure(s) to {output}')


def _parse_cell(text: str) -> list:
    values = _split_floats(text, '--cell')
    if len(values) == 3:
        return values
    if len(values) == 9:
        return [values[0:3], values[3:6], values[6:9]]
    fail(f'--cell {text!r} must be three lengths (e.g. 14,14,16) or nine numbers (three lattice vectors), in Å.')


def _composition_line(node) -> str:
    """The realised unit fractions next to the requested ones (the integer formula can only approximate them)."""
    formula = node.base.attributes.get('integer_formula', None) or {}
    requested, realised = formula.get('requested_unit_fractions'), formula.get('realised_unit_fractions')
    if not requested or not realised:
        return ''
    pairs = ', '.join(f'{unit} {requested[unit]:.4f} -> {realised.get(unit, float("nan")):.4f}' for unit in requested)
    return (f'composition requested -> realised: {pairs} (largest atomic-fraction deviation '
            f'{formula.get("max_deviation", 0.0):.4f})')


def _run(grid, units, step, seed, settings, states, strains, group_label, compositions, progress):
    """A grid (or explicit compositions with a group label) goes through the grid runner and gets a group; a single
    composition without a group label is stored on its own."""
    from aiida_glassml.calcfunctions.structures import run_random_structure, run_strained_copies

    if compositions is not None and len(compositions) == 1 and group_label is None:
        structure = run_random_structure(compositions[0], seed, settings)
        nodes = list(run_strained_copies(structure, strains).values()) if strains else [structure]
        if strains:
            nodes = [structure, *nodes]
        progress(1, 1, structure)
        return None, nodes
    return grid(units, step, seed, settings, states, strains, group_label, compositions=compositions,
                progress=progress)  # fmt: skip


def _write(path: pathlib.Path, nodes) -> None:
    import ase.io

    frames = []
    for node in nodes:
        atoms = node.get_ase()
        attributes = node.base.attributes
        atoms.info.update({'pk': node.pk, 'uuid': node.uuid, 'composition': attributes.get('composition_label', ''),
                           'seed': attributes.get('seed', -1), 'density': attributes.get('density', 0.0),
                           'density_source': attributes.get('density_source', ''),
                           'strain_factor': attributes.get('strain_factor', 1.0)})  # fmt: skip
        frames.append(atoms)
    ase.io.write(path, frames, format='extxyz')
