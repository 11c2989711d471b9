"""``aiida-glassml potential evaluate``: errors of an ACE potential on a labelled dataset, nodes or plain files."""

from __future__ import annotations

import json
import pathlib
import sys

import click

from . import cli
from .utils import echo_json, fail


@cli.group('potential')
def potential():
    """Work with ACE potentials."""


def _load_node(identifier: str, kind: str):
    """A node by PK, UUID or label (the AiiDA profile is loaded only here, so plain files need none)."""
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded
    from aiida.common.exceptions import AiidaException, MultipleObjectsError, NotExistent
    from aiida.orm import Node, QueryBuilder, load_node

    if pathlib.Path(identifier).exists():
        fail(f'{kind} {identifier} is a folder; give a file or a node.')
    try:
        load_backend_if_not_loaded()
    except AiidaException as exc:  # no profile, or its storage unreachable: the file is the likelier intent
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f'{kind} {identifier}: no such file (and it cannot be looked up as a node: {reason}; configure a profile '
             'with `aiida-glassml setup`).')  # fmt: skip
    try:
        return load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError):
        pass
    matches = QueryBuilder().append(Node, filters={'label': identifier}).all(flat=True)
    if not matches:
        fail(f'{kind} {identifier}: no such file, and no node has that PK, UUID or label.')
    if len(matches) > 1:
        fail(f'{kind} {identifier}: no such file, and {len(matches)} nodes have that label; give a PK or UUID.')
    return matches[0]


def _potential_yaml(identifier: str) -> pathlib.Path:
    from aiida_glassml.data.ace_potential import AcePotentialData

    path = pathlib.Path(identifier)
    if path.is_file():
        return path
    node = _load_node(identifier, 'POTENTIAL')
    if not isinstance(node, AcePotentialData):
        fail(f'node {node.pk} is a {type(node).__name__}; POTENTIAL must be an AcePotentialData or a pacemaker .yaml.')
    return node._cached_files()['yaml']


def _frameset(identifier: str):
    from aiida_glassml.common.frames import FrameSet, FrameValidationError
    from aiida_glassml.data.training_set import TrainingSetData

    path = pathlib.Path(identifier)
    if path.is_file():
        try:
            if any(path.name.endswith(s) for s in ('.pckl', '.pkl', '.pckl.gzip', '.pkl.gz', '.pckl.gz', '.pkl.gzip')):
                return FrameSet.read_pacemaker_pickle(path)
            return FrameSet.read_extxyz(path)
        except (FrameValidationError, OSError, ValueError) as exc:
            fail(f'{path}: {exc}')
    node = _load_node(identifier, 'DATASET')
    if not isinstance(node, TrainingSetData):
        fail(f'node {node.pk} is a {type(node).__name__}; DATASET must be a TrainingSetData, an extxyz file or a '
             'pacemaker pickle.')  # fmt: skip
    return node.get_frameset()


def _reference_energies(option: str | None) -> dict | None:
    if option is None:
        return None
    text = pathlib.Path(option).read_text() if pathlib.Path(option).is_file() else option
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f'--reference-energies must be JSON such as \'{{"Na": -0.075, "O": -0.091}}\' or a JSON file: {exc}')
    if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
        fail('--reference-energies must map element symbols to energies in eV, e.g. \'{"Na": -0.075}\'.')
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.fitting.evaluate import check_reference_energies

    try:
        check_reference_energies(value)
    except AcePotentialError as exc:
        fail(f'--reference-energies: {exc}')
    return value


@potential.command('evaluate')
@click.argument('potential_id', metavar='POTENTIAL')
@click.argument('dataset_id', metavar='DATASET')
@click.option('--json', 'as_json', is_flag=True, help='Print one JSON object.')
@click.option('--reference-energies', default=None,
              help='Per-element reference energies (eV) as JSON or a JSON file; default: the potential metadata.')
@click.option('--store', is_flag=True,
              help='Store the result with provenance (an EvaluatePotentialCalculation job on the code glassml-python); '
                   'needs two nodes.')
def evaluate(potential_id, dataset_id, as_json, reference_energies, store):
    """Energy (meV/atom) and force (meV/Å) errors of POTENTIAL on DATASET.

    POTENTIAL: an AcePotentialData (PK, UUID or label) or a pacemaker .yaml file. DATASET: a TrainingSetData, an
    extxyz file or a pacemaker pickle (.pckl.gzip)."""
    from aiida_glassml.common import ace
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.fitting.evaluate import check_covers, check_reference_energies
    from aiida_glassml.fitting.evaluate import evaluate as evaluate_files
    from aiida_glassml.fitting.metrics import MetricsError

    reference = _reference_energies(reference_energies)
    if store:
        _evaluate_and_store(potential_id, dataset_id, reference, as_json)
        return
    yaml_path = _potential_yaml(potential_id)
    frames = _frameset(dataset_id)
    try:  # check before the (slow) evaluation starts
        elements = ace.parse_bbasis_yaml(yaml_path.read_bytes())['elements']
    except AcePotentialError as exc:
        fail(f'{potential_id}: {exc}')
    try:
        check_covers(elements, frames.elements)
        if reference:
            check_reference_energies(reference, frames.elements)
    except AcePotentialError as exc:
        fail(str(exc))
    try:
        with click.progressbar(length=frames.n_frames, label='Evaluating', file=sys.stderr,
                               hidden=as_json) as bar:  # fmt: skip
            metrics, _ = evaluate_files(yaml_path, frames, reference_energy=reference, progress=lambda _: bar.update(1))
    except (AcePotentialError, MetricsError) as exc:
        fail(str(exc))
    metrics['units'] = {'energy': 'meV/atom', 'force': 'meV/Å'}
    _echo_metrics(metrics, as_json)


def _evaluate_and_store(potential_id: str, dataset_id: str, reference: dict | None, as_json: bool) -> None:
    """Both arguments must be nodes; checked (elements covered, reference energies) before anything is stored."""
    from aiida_glassml.calcfunctions.potential import run_evaluate_potential
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.data.ace_potential import AcePotentialData
    from aiida_glassml.data.training_set import TrainingSetData

    nodes = []
    for identifier, kind, cls in (
        (potential_id, 'POTENTIAL', AcePotentialData), (dataset_id, 'DATASET', TrainingSetData)
    ):  # fmt: skip
        if pathlib.Path(identifier).is_file():
            fail(f'--store needs stored nodes, but {kind} {identifier} is a file; import it first (e.g. '
                 f'`TrainingSetData.from_file`) or leave out --store.')  # fmt: skip
        node = _load_node(identifier, kind)
        if not isinstance(node, cls):
            fail(f'node {node.pk} is a {type(node).__name__}; {kind} must be a {cls.__name__} for --store.')
        nodes.append(node)
    try:
        outputs = run_evaluate_potential(nodes[0], nodes[1], reference)
    except AcePotentialError as exc:
        fail(str(exc))
    metrics = outputs['metrics'].get_dict()
    metrics['metrics_pk'], metrics['frame_errors_pk'] = outputs['metrics'].pk, outputs['frame_errors'].pk
    _echo_metrics(metrics, as_json)
    if not as_json:
        click.echo(f'stored Dict<{outputs["metrics"].pk}> (metrics) and ArrayData<{outputs["frame_errors"].pk}> '
                   '(per-frame errors)')  # fmt: skip


def _echo_metrics(metrics: dict, as_json: bool) -> None:
    if as_json:
        echo_json(metrics)
        return
    click.echo(f'{metrics["n_frames"]} frames, {metrics["n_atoms"]} atoms '
               f'(reference energies: {metrics["reference_energy_source"]})')  # fmt: skip
    click.echo(f'energy MAE {metrics["energy_mae"]:.2f}  RMSE {metrics["energy_rmse"]:.2f} meV/atom')
    click.echo(f'force  MAE {metrics["force_mae"]:.1f}  RMSE {metrics["force_rmse"]:.1f} meV/Å')
