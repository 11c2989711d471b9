"""``aiida-glassml data import|export|show`` for training sets and potentials."""

import pathlib

import click
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators

from . import cli
from .utils import check_output_file, echo_json, fail


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
    """Import an extxyz file or a pacemaker pandas pickle as a TrainingSetData (stored once by content: the same
    frames, labels, metadata and level of theory again reuse the stored node)."""
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
    existing = node.find_stored()
    if existing is not None:  # stored once by content, as potentials are
        click.echo(f'Reused TrainingSetData<{existing.pk}> ({existing.uuid}): the same frames, labels, metadata and '
                   f'level of theory are already stored; nothing new stored. {node_facts(existing)}')  # fmt: skip
        _note_label(existing, label)
        return
    node.store()
    click.echo(f'Stored TrainingSetData<{node.pk}> ({node.uuid}): {node_facts(node)}')


@data_import.command('potential')
@click.argument('yaml_file', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--yace', type=click.Path(exists=True, dir_okay=False), default=None,
              help='The .yace, checked against the .yaml (cutoffs, basis, coefficients); made with pace_yaml2yace '
                   'when omitted.')
@click.option('--asi', type=click.Path(exists=True, dir_okay=False), default=None, help='The active set (.asi).')
@click.option('--label', default=None, help='Node label.')
@decorators.with_dbenv()
def import_potential(yaml_file, yace, asi, label):
    """Import a pacemaker potential (.yaml, optional .yace and .asi) as an AcePotentialData (stored once by hash)."""
    from aiida_glassml.common import ace
    from aiida_glassml.data import AcePotentialData
    from aiida_glassml.data.ace_potential import AcePotentialError

    yaml_bytes, asi_bytes = yaml_file.read_bytes(), pathlib.Path(asi).read_bytes() if asi else None
    yace_bytes = pathlib.Path(yace).read_bytes() if yace else None
    existing = AcePotentialData.find_stored(yaml_bytes, asi_bytes)
    if existing is None:
        try:
            node = AcePotentialData(yaml=yaml_bytes, yace=yace_bytes, asi=asi_bytes, label=label or '').store()
        except AcePotentialError as exc:
            fail(f'{yaml_file}: {exc}')
        made = 'checked against the .yaml' if yace else 'made from the .yaml'
        click.echo(f'Stored AcePotentialData<{node.pk}> ({node.uuid}): {node_facts(node)}; .yace {made}')
        return
    if yace_bytes is not None:  # the same check as for a new node: a .yace of another potential is an error
        try:
            ace.check_yace_matches(ace.read_yace_elements(yace_bytes), existing.elements)
            ace.check_yace_is_yaml(yace_bytes, yaml_bytes)
        except AcePotentialError as exc:
            fail(f'{yace}: {exc}')
    click.echo(f'Reused AcePotentialData<{existing.pk}> ({existing.uuid}): this .yaml{" and .asi" if asi else ""} '
               f'is already stored; nothing new stored. {node_facts(existing)}')  # fmt: skip
    if yace_bytes is not None and ace.sha256_bytes(yace_bytes) != existing.base.attributes.get('sha256_yace'):
        click.echo('Note: --yace ignored: it is the same potential, but the node keeps its own .yace.')
    _note_label(existing, label)


def _note_label(node, label: str | None) -> None:
    """An existing node keeps its label; say so rather than drop --label without a word."""
    if not label or label == node.label:
        return
    if node.label:
        click.echo(f'Note: --label ignored: node {node.pk} keeps its label `{node.label}` (change it with '
                   f'`verdi node label {node.pk} -L NEW_LABEL`).')  # fmt: skip
    else:
        node.label = label
        click.echo(f'Note: node {node.pk} had no label; labelled it `{label}`.')


@data.command('export')
@arguments.NODE('node')
@click.argument('output', type=click.Path(path_type=pathlib.Path))
@click.option('-f', '--force', is_flag=True, help='Overwrite existing files.')
@decorators.with_dbenv()
def export(node, output, force):
    """Export NODE (PK, UUID or label). Training sets: OUTPUT is a file (.xyz/.extxyz, or .pckl.gzip for pacemaker).
    Potentials: OUTPUT is a folder (created if its parent exists) that receives potential.yaml, .yace and .asi."""
    from aiida_glassml.data import AcePotentialData, TrainingSetData

    if isinstance(node, TrainingSetData):
        _check_output(output, [output], force, folder=False)
        try:
            node.export(output)
        except OSError as exc:
            fail(f'cannot write {output}: {exc.strerror or exc}.')
        click.echo(f'Wrote {node.n_frames} frames to {output}')
    elif isinstance(node, AcePotentialData):
        names = [node.YAML, node.YACE] + ([node.ASI] if node.has_active_set else [])
        _check_output(output, [output / name for name in names], force, folder=True)
        try:
            paths = node.write_files(output)
        except OSError as exc:
            fail(f'cannot write into {output}: {exc.strerror or exc}.')
        click.echo('Wrote ' + ', '.join(str(p) for p in paths.values()))
    else:
        fail(f'node {node.pk} is a {type(node).__name__}; export takes a TrainingSetData or an AcePotentialData.')


def _check_output(output: pathlib.Path, files: list[pathlib.Path], force: bool, folder: bool) -> None:
    """Refuse, before writing anything, an OUTPUT whose folder is missing, of the wrong kind, or files to overwrite."""
    import os

    if not folder:
        check_output_file(output)
    elif output.exists() and not output.is_dir():
        fail(f'{output} is a file; a potential is exported into a folder: give a folder path.')
    elif not output.is_dir():  # made by the export, inside an existing folder
        parent = output.absolute().parent
        if not parent.is_dir():
            fail(f'output folder {parent} does not exist or is not a folder; create it first (mkdir -p {parent}).')
        if not os.access(parent, os.W_OK | os.X_OK):
            fail(f'output folder {parent} is not writable; choose another place or fix its permissions.')
    existing = [str(f) for f in files if f.exists()]
    if existing and not force:
        fail(f'{", ".join(existing)} already exist{"s" if len(existing) == 1 else ""}; give --force to overwrite.')


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
