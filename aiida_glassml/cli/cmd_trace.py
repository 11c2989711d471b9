"""``aiida-glassml trace NODE`` (what stands behind a figure, potential or dataset) and ``aiida-glassml export NODE
FILE`` (an AiiDA archive of NODE and its provenance, for a colleague or a paper's data set)."""

from __future__ import annotations

import logging
import pathlib

import click
from aiida.cmdline.utils import decorators

from . import cli
from .utils import echo_json, fail


def _load_node(identifier: str):
    """NODE by PK, UUID or label, resolved as ``verdi`` does (aiida's NodeParamType), with a one-line error."""
    from aiida.cmdline.params.types import NodeParamType

    try:
        return NodeParamType().convert(identifier, None, None)
    except click.BadParameter as exc:
        fail(f'NODE `{identifier}`: {exc.message}; give a PK, UUID or unique label of a node in this profile.')


@cli.command('trace')
@click.argument('identifier', metavar='NODE')
@click.option('--json', 'as_json', is_flag=True, help='Print the trace as JSON.')
@click.option('--graph', 'graph_path', type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help='Also draw the upstream graph: .dot (graphviz source), or .png/.svg/.pdf (needs graphviz `dot`).')
@decorators.with_dbenv()
def trace(identifier, as_json, graph_path):
    """Where NODE (PK, UUID or label: a figure, potential, dataset or workflow) comes from: the DFT/labelling
    calculations, frames labelled, fits, MD runs, and a short path back."""
    from aiida_glassml.tools import provenance

    node = _load_node(identifier)
    if graph_path is not None:
        try:
            provenance.check_graph_path(graph_path)
        except provenance.ProvenanceError as exc:
            fail(str(exc))
    result = provenance.trace(node)
    if graph_path is not None:
        provenance.trace_graph(node, graph_path)
    if as_json:
        echo_json({**result.to_dict(), 'graph': str(graph_path) if graph_path else None})
        return
    click.echo(provenance.format_trace(result))
    if graph_path is not None:
        click.echo(f'Graph: {graph_path}')


@cli.command('export')
@click.argument('identifier', metavar='NODE')
@click.argument('output', metavar='FILE', type=click.Path(path_type=pathlib.Path))
@click.option('--force', is_flag=True, help='Overwrite FILE if it exists.')
@decorators.with_dbenv()
def export(identifier, output, force):
    """Write NODE and its provenance (by AiiDA's default export rules: what created it, their inputs, back to the
    start; what it called) to the AiiDA archive FILE; `verdi archive import FILE` reads it elsewhere."""
    node = _load_node(identifier)
    if output.is_dir():
        fail(f'FILE {output} is a folder; give a file name such as {output / "provenance.aiida"}.')
    if output.exists() and not force:
        fail(f'FILE {output} exists; pass --force to overwrite it, or choose another name.')
    if not output.parent.is_dir():
        fail(f'folder {output.parent} does not exist; create it first (mkdir -p {output.parent}).')
    n_nodes = write_archive(node, output, overwrite=force)
    click.echo(f'Wrote {n_nodes} nodes ({type(node).__name__}<{node.pk}> and its provenance) to {output}')


def write_archive(node, path: pathlib.Path, overwrite: bool = False) -> int:
    """Write ``node`` and, by AiiDA's default export rules, its provenance and what it called to the AiiDA archive
    ``path``; return the number of nodes written. The caller checks ``path`` first (``export`` does)."""
    from aiida import orm
    from aiida.tools.archive import create_archive
    from aiida.tools.archive.abstract import get_format

    # aiida's export report (a table of parameters) would bury the one line the commands print
    export_logger = logging.getLogger('aiida.export')
    level = export_logger.level
    export_logger.setLevel(logging.WARNING)
    try:
        create_archive([node], filename=path, overwrite=overwrite)
    finally:
        export_logger.setLevel(level)
    with get_format().open(path, 'r') as archive:
        return archive.querybuilder().append(orm.Node).count()
