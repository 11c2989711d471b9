"""``aiida-glassml analyse structure`` (this module) and ``analyse trajectory`` (added onto the same group by the
dynamics module). Works on plain files; ``--store`` records the results with provenance."""

import pathlib

import click

from . import cli
from .utils import echo_json, fail


@cli.group('analyse')
def analyse():
    """Analyse glass structures and trajectories (LAMMPS data/dump, extxyz, POSCAR/XDATCAR)."""


def _parse_cutoffs(values) -> dict:
    cutoffs = {}
    for value in values:
        try:
            pair, distance = value.split('=')
            cutoffs[pair.strip()] = float(distance)
        except ValueError:
            fail(f'--cutoff {value!r} is not of the form PAIR=DISTANCE, e.g. --cutoff Fe-O=2.7')
    return cutoffs


@analyse.command('structure')
@click.argument('path', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--format', 'file_format', default=None,
              help='lammps-data, lammps-dump, extxyz, vasp, vasp-xdatcar or any ASE format (default: from the name).')
@click.option('--cutoff', 'cutoffs', multiple=True, help='Bond cutoff override, e.g. --cutoff Fe-O=2.7 (repeatable).')
@click.option('--formers', default='P,Fe', show_default=True, help='Network formers, comma separated.')
@click.option('--anions', default='O,S', show_default=True, help='Anions, comma separated.')
@click.option('--json', 'as_json', is_flag=True, help='Print the results as one JSON object.')
@click.option('--store', is_flag=True, help='Store structure, results, g(r), S(Q) and figures in the profile.')
def analyse_structure_command(path, file_format, cutoffs, formers, anions, as_json, store):
    """Structure summary of one glass: density, bond cutoffs, coordination, bridging, Qⁿ, edge sharing."""
    from aiida_glassml.analysis import AnalysisInputError, analyse_structure, read_structure

    cutoff_map = _parse_cutoffs(cutoffs)
    former_list = [f.strip() for f in formers.split(',') if f.strip()]
    anion_list = [a.strip() for a in anions.split(',') if a.strip()]
    try:
        atoms = read_structure(path, format=file_format)
        if store:
            results, pks = _store(atoms, cutoff_map, former_list, anion_list, path)
        else:
            results, pks = analyse_structure(atoms, cutoff_map, former_list, anion_list), None
    except (AnalysisInputError, OSError) as exc:
        fail(f'{path}: {exc}')
    if pks:
        results = {**results, 'stored': pks}
    if as_json:
        echo_json(results)
        return
    click.echo(f'{path.name}: {results["n_atoms"]} atoms, density {results["density"]:.3f} g/cm³')
    click.echo('cutoffs (Å): ' + ', '.join(f'{k} {v:.2f}' for k, v in results['cutoffs'].items()))
    for centre, by_neighbour in sorted(results['coordination'].items()):
        click.echo(f'CN {centre}: ' + ', '.join(f'{n} {v:.2f}' for n, v in sorted(by_neighbour.items())))
    click.echo('bridging (per A): ' + ', '.join(f'{k} {v:.3f}' for k, v in results['bridging'].items()))
    for former, fractions in results['qn'].items():
        click.echo(f'Q^n {former}: ' + ', '.join(f'Q{n} {v:.3f}' for n, v in sorted(fractions.items())))
    if pks:
        click.echo('stored: ' + ', '.join(f'{k}<{v}>' for k, v in pks.items()))


def _store(atoms, cutoffs, formers, anions, path):
    from aiida import load_profile
    from aiida.manage import get_manager

    if get_manager().get_profile() is None:  # -p PROFILE loads one; otherwise use the default profile
        try:
            load_profile()
        except Exception as exc:  # noqa: BLE001
            fail(f'--store needs an AiiDA profile ({exc}); pass -p PROFILE or run `verdi presto`.')
    from aiida.orm import StructureData

    from aiida_glassml.calcfunctions.analysis_structure import run_structure_analysis, validate_structure_parameters

    structure = StructureData(ase=atoms)
    structure.label = path.name
    parameters = {'cutoffs': cutoffs, 'formers': formers, 'anions': anions}
    validate_structure_parameters(structure, parameters)  # before storing anything
    structure.store()
    outputs = run_structure_analysis(structure, parameters)
    pks = {'structure': structure.pk, **{key: node.pk for key, node in outputs.items()}}
    return outputs['results'].get_dict(), pks
