"""``verdi data glassml.training_set|glassml.ace_potential|glassml.classical_potential list|show|export``.

verdi finds these groups through the ``aiida.cmdline.data`` entry points in pyproject.toml. ``show`` prints what
``aiida-glassml data import|show`` print (shared functions in :mod:`.cmd_data`); ``export`` writes files that the
matching importer or LAMMPS reads.
"""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.commands.cmd_data.cmd_list import list_options
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import arguments, options, types
from aiida.cmdline.utils import decorators

from .cmd_data import node_facts, node_payload
from .utils import echo_json, fail

OUTPUT = click.argument('output', type=click.Path(path_type=pathlib.Path))
FORCE = options.FORCE(help='Overwrite existing files.')
#: suffixes of ``verdi data glassml.classical_potential export`` that give LAMMPS commands (``.json``: description)
CLASSICAL_LAMMPS_SUFFIXES = ('.in', '.lmp', '.lammps')


def _node_argument(entry_point: str):
    """The NODE argument (PK, UUID or label), restricted to one glassml data type so others are refused by verdi."""
    return arguments.NODE(type=types.DataParamType(sub_classes=(f'aiida.data:{entry_point}',)))


# -- shared by the three groups ------------------------------------------------------------------------------------
def _list_nodes(entry_point: str, columns: dict, past_days, groups, all_users, raw) -> None:
    """Print a table of the stored nodes of ``entry_point``: PK, label, ctime and ``columns`` (header -> function of
    the projected attributes, keyed by attribute name)."""
    from aiida.cmdline.commands.cmd_data.cmd_list import query
    from aiida.common import timezone
    from aiida.plugins import DataFactory
    from tabulate import tabulate

    attribute_keys = sorted({key for _, keys in columns.values() for key in keys})
    project = ['id', 'label', 'ctime', *(f'attributes.{key}' for key in attribute_keys)]
    group_pks = [group.pk for group in groups] if groups else None
    rows = []
    for pk, label, ctime, *values in query(DataFactory(entry_point), project, past_days, group_pks, all_users):
        attributes = dict(zip(attribute_keys, values))
        cells = [render(*(attributes[key] for key in keys)) for render, keys in columns.values()]
        rows.append([pk, label, timezone.localtime(ctime).strftime('%Y-%m-%d %H:%M'), *cells])
    if raw:
        click.echo(tabulate(rows, tablefmt='plain'))
        return
    click.echo(tabulate(rows, headers=['PK', 'Label', 'Ctime', *columns]))
    click.echo(f'\nTotal results: {len(rows)}\n')


def _show_node(node) -> None:
    click.echo(f'{type(node).__name__}<{node.pk}> ({node.uuid}) label: {node.label or "-"}')
    click.echo(node_facts(node))
    echo_json(node_payload(node))


def _check_targets(paths: list[pathlib.Path], force: bool) -> None:
    """Refuse before anything is written: a missing folder, a folder as file name, or an existing file without
    ``--force``."""
    for path in paths:
        if not path.parent.is_dir():
            fail(f'folder {path.parent} does not exist; create it first or give OUTPUT in an existing folder.')
        if path.is_dir():
            fail(f'{path} is a folder; give OUTPUT as a file name inside it.')
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        fail(f'{", ".join(existing)} already exist{"s" if len(existing) == 1 else ""}; pass --force to overwrite.')


def _text(values) -> str:
    return ' '.join(values or [])


# -- training sets -------------------------------------------------------------------------------------------------
@click.group('glassml.training_set', cls=VerdiCommandGroup)
def training_set():
    """Inspect and export TrainingSetData nodes (labelled frames)."""


@training_set.command('list')
@list_options
@decorators.with_dbenv()
def training_set_list(past_days, groups, all_users, raw):
    """List the stored TrainingSetData nodes."""
    _list_nodes('glassml.training_set', {
        'Frames': (str, ['n_frames']),
        'Atoms': (str, ['n_atoms_total']),
        'Elements': (_text, ['elements']),
        'Level of theory': (lambda level: level['engine'] if level else 'unknown', ['level_of_theory']),
    }, past_days, groups, all_users, raw)  # fmt: skip


@training_set.command('show')
@_node_argument('glassml.training_set')
@decorators.with_dbenv()
def training_set_show(node):
    """Show the key facts and attributes of a TrainingSetData (PK, UUID or label)."""
    _show_node(node)


@training_set.command('export')
@_node_argument('glassml.training_set')
@OUTPUT
@FORCE
@decorators.with_dbenv()
def training_set_export(node, output, force):
    """Write the frames of NODE to OUTPUT: a pacemaker pickle for .pckl/.pckl.gzip/.pkl.gz, otherwise extxyz."""
    _check_targets([output], force)
    node.export(output)
    click.echo(f'Wrote {node.n_frames} frames to {output}')


# -- ACE potentials ------------------------------------------------------------------------------------------------
@click.group('glassml.ace_potential', cls=VerdiCommandGroup)
def ace_potential():
    """Inspect and export AcePotentialData nodes (pacemaker .yaml/.yace/.asi)."""


@ace_potential.command('list')
@list_options
@decorators.with_dbenv()
def ace_potential_list(past_days, groups, all_users, raw):
    """List the stored AcePotentialData nodes."""
    _list_nodes('glassml.ace_potential', {
        'Elements': (_text, ['elements']),
        'Cutoff (Å)': (str, ['cutoff']),
        'Active set': (lambda has: 'yes' if has else 'no', ['has_active_set']),
    }, past_days, groups, all_users, raw)  # fmt: skip


@ace_potential.command('show')
@_node_argument('glassml.ace_potential')
@decorators.with_dbenv()
def ace_potential_show(node):
    """Show the key facts and attributes of an AcePotentialData (PK, UUID or label)."""
    _show_node(node)


@ace_potential.command('export')
@_node_argument('glassml.ace_potential')
@OUTPUT
@FORCE
@decorators.with_dbenv()
def ace_potential_export(node, output, force):
    """Write the B-basis of NODE to OUTPUT (.yaml), and its .yace and active set .asi (if any) beside it."""
    if output.suffix not in ('.yaml', '.yml'):
        fail(f'OUTPUT {output} must end in .yaml (the .yace and .asi are written beside it with the same stem).')
    targets = {node.YAML: output, node.YACE: output.with_suffix('.yace')}
    if node.has_active_set:
        targets[node.ASI] = output.with_suffix('.asi')
    _check_targets(list(targets.values()), force)
    for name, path in targets.items():
        path.write_bytes(node.base.repository.get_object_content(name, mode='rb'))
    click.echo('Wrote ' + ', '.join(str(path) for path in targets.values()))


# -- classical potentials ------------------------------------------------------------------------------------------
@click.group('glassml.classical_potential', cls=VerdiCommandGroup)
def classical_potential():
    """Inspect and export ClassicalPotentialData nodes (charges, pair and three-body terms, references)."""


@classical_potential.command('list')
@list_options
@decorators.with_dbenv()
def classical_potential_list(past_days, groups, all_users, raw):
    """List the stored ClassicalPotentialData nodes."""
    _list_nodes('glassml.classical_potential', {
        'Name': (str, ['name']),
        'Form': (str, ['form']),
        'Elements': (_text, ['elements']),
    }, past_days, groups, all_users, raw)  # fmt: skip


@classical_potential.command('show')
@_node_argument('glassml.classical_potential')
@decorators.with_dbenv()
def classical_potential_show(node):
    """Show the key facts and attributes (charges, pairs, references) of a ClassicalPotentialData."""
    _show_node(node)


@classical_potential.command('export')
@_node_argument('glassml.classical_potential')
@OUTPUT
@click.option('--species', default=None, metavar='A,B,...',
              help='LAMMPS type order for a LAMMPS export, as species of the potential (default: all, in the order '
                   'of the potential).')  # fmt: skip
@FORCE
@decorators.with_dbenv()
def classical_potential_export(node, output, species, force):
    """Write NODE to OUTPUT: .json gives the full description (ClassicalPotential.from_dict reads it); .in, .lmp or
    .lammps give LAMMPS commands (charges, pair_style/pair_coeff, kspace) to include after read_data, with any
    table or three-body file beside them."""
    import json

    from aiida_glassml.md.potentials import PotentialError

    potential = node.get_potential()
    if output.suffix == '.json':
        if species is not None:
            fail('--species applies to a LAMMPS export only; drop it or give OUTPUT a .in/.lmp/.lammps suffix.')
        _check_targets([output], force)
        output.write_text(json.dumps(potential.to_dict(), indent=2) + '\n', encoding='utf-8')
        click.echo(f'Wrote {output}')
        return
    if output.suffix not in CLASSICAL_LAMMPS_SUFFIXES:
        fail(f'OUTPUT {output} has suffix {output.suffix or "(none)"}; use .json for the description or '
             f'{"/".join(CLASSICAL_LAMMPS_SUFFIXES)} for LAMMPS commands.')  # fmt: skip
    type_species = species.split(',') if species else list(potential.charges)
    unknown = [s for s in type_species if s not in potential.charges]
    if unknown:
        fail(f'--species {",".join(unknown)} not in potential {potential.name!r}; '
             f'it has {",".join(potential.charges)}.')
    try:
        lines, files = potential.lammps_lines(type_species)
    except PotentialError as exc:
        fail(str(exc))
    targets = [output, *(output.parent / name for name in files)]
    _check_targets(targets, force)
    header = [
        f'# {potential.name} ({potential.form}) from ClassicalPotentialData<{node.pk}> ({node.uuid}), '
        'written by verdi data glassml.classical_potential export',
        '# units metal, atom_style charge; include after read_data, run LAMMPS in this folder (auxiliary files).',
        '# types: ' + ', '.join(f'{i} {s}' for i, s in enumerate(type_species, start=1)),
        *(f'# reference: {reference}' for reference in potential.references),
    ]  # fmt: skip
    output.write_text('\n'.join([*header, *potential.charge_lines(type_species), *lines]) + '\n', encoding='utf-8')
    for name, content in files.items():
        (output.parent / name).write_text(content, encoding='utf-8')
    click.echo('Wrote ' + ', '.join(str(path) for path in targets))
