"""``aiida-glassml data import|export|show`` for training sets and potentials."""

import pathlib

import click
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators

from . import cli
from .utils import echo_json, fail


@cli.group('data')
def data():
    """Import and export training sets (extxyz, pacemaker pickle) and ACE potentials (yaml/yace/asi)."""


@data.group('import')
def data_import():
    """Import files as nodes."""


@data_import.command('training-set')
@click.argument('path', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--sample-type', type=click.Choice(['aimd', 'active_learning', 'single_point', 'imported']),
              default=None, help='Override the sample type of every frame (default: keep, or `imported`).')
@click.option('--label', default=None, help='Node label.')
@click.option('--level-of-theory', 'level_of_theory', default=None, metavar='JSON',
              help='What the labels were computed with, as JSON, e.g. \'{"engine": "vasp", "functional": "PBE+U", '
                   '"hubbard_u": {"Fe": 5.1}, "cutoff": {"encut_ev": 520}, "spin": "collinear", '
                   '"pseudopotential_family": "PBE.54"}\'. Without it the level is unknown and merging with '
                   'labelled sets is refused.')  # fmt: skip
@decorators.with_dbenv()
def import_training_set(path, sample_type, label, level_of_theory):
    """Import an extxyz file or a pacemaker pandas pickle as a TrainingSetData."""
    import json

    from aiida_glassml.data import TrainingSetData
    from aiida_glassml.common.frames import FrameValidationError
    from aiida_glassml.labeling import LabelingInputError

    metadata = {'sample_type': sample_type} if sample_type else None
    level = None
    if level_of_theory is not None:
        try:
            level = json.loads(level_of_theory)
        except json.JSONDecodeError as exc:
            fail(f'--level-of-theory is not valid JSON ({exc}); give an object such as \'{{"engine": "vasp"}}\'.')
    try:
        node = TrainingSetData.from_file(path, metadata=metadata, level_of_theory=level, label=label or path.name)
    except (FrameValidationError, LabelingInputError, OSError) as exc:
        fail(f'{path}: {exc}')
    node.store()
    click.echo(f'Stored TrainingSetData<{node.pk}> ({node.uuid}): {node_facts(node)}')


@data_import.command('potential')
@click.argument('yaml_file', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--yace', type=click.Path(exists=True, dir_okay=False), default=None,
              help='The .yace; made with pace_yaml2yace when omitted.')
@click.option('--asi', type=click.Path(exists=True, dir_okay=False), default=None, help='The active set (.asi).')
@click.option('--label', default=None, help='Node label.')
@decorators.with_dbenv()
def import_potential(yaml_file, yace, asi, label):
    """Import a pacemaker potential (.yaml, optional .yace and .asi) as an AcePotentialData (stored once by hash)."""
    from aiida_glassml.data import AcePotentialData
    from aiida_glassml.data.ace_potential import AcePotentialError

    try:
        node = AcePotentialData.get_or_create(yaml_file, yace=yace, asi=asi)
    except AcePotentialError as exc:
        fail(f'{yaml_file}: {exc}')
    if label and not node.label:
        node.label = label
    click.echo(f'AcePotentialData<{node.pk}> ({node.uuid}): {node_facts(node)}')


@data.command('export')
@arguments.NODE('node')
@click.argument('output', type=click.Path(path_type=pathlib.Path))
@decorators.with_dbenv()
def export(node, output):
    """Export NODE (PK, UUID or label). Training sets: OUTPUT is a file (.xyz/.extxyz, or .pckl.gzip for pacemaker).
    Potentials: OUTPUT is a folder that receives potential.yaml, .yace and .asi."""
    from aiida_glassml.data import AcePotentialData, TrainingSetData

    if isinstance(node, TrainingSetData):
        node.export(output)
        click.echo(f'Wrote {node.n_frames} frames to {output}')
    elif isinstance(node, AcePotentialData):
        paths = node.write_files(output)
        click.echo('Wrote ' + ', '.join(str(p) for p in paths.values()))
    else:
        fail(f'node {node.pk} is a {type(node).__name__}; export takes a TrainingSetData or an AcePotentialData.')


@data.command('show')
@arguments.NODE('node')
@decorators.with_dbenv()
def show(node):
    """Show the attributes of a training set or potential as JSON."""
    echo_json(node_payload(node))


# -- shared with ``verdi data glassml.*`` (cli/verdi_data.py), so both print the same facts --------------------------
def node_facts(node) -> str:
    """The key facts of a training set or potential in one line, e.g. ``436 frames, 49902 atoms, ...``."""
    from aiida_glassml.data import AcePotentialData, TrainingSetData
    from aiida_glassml.data.classical_potential import ClassicalPotentialData

    if isinstance(node, TrainingSetData):
        level = node.level_of_theory
        return (f'{node.n_frames} frames, {node.n_atoms_total} atoms, elements {" ".join(node.elements)}, '
                f'level of theory: {level["engine"] if level else "unknown"}')  # fmt: skip
    if isinstance(node, AcePotentialData):
        return (f'elements {" ".join(node.elements)}, cutoff {node.cutoff} Å, '
                f'active set: {"yes" if node.has_active_set else "no"}')  # fmt: skip
    if isinstance(node, ClassicalPotentialData):
        return (f'{node.name} ({node.base.attributes.get("form")}), elements {" ".join(node.elements)}, '
                f'cutoff {node.base.attributes.get("cutoff")} Å, {len(node.references)} reference(s)')  # fmt: skip
    return type(node).__name__


def node_payload(node) -> dict:
    """What ``data show`` prints: identity and every attribute."""
    return {'pk': node.pk, 'uuid': node.uuid, 'type': type(node).__name__, **node.base.attributes.all}
