"""Provenance queries people ask: which labelling calculations stand behind a potential, a dataset or a figure, how
many frames they labelled, which fits and MD runs lie in between (:func:`trace`), and a picture of that graph
(:func:`trace_graph`)."""

from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
import shutil

from aiida import orm
from aiida.common.links import LinkType

#: process type of each CalcJob that makes labels -> its engine (DFT engines and the potential teacher)
LABELLING_ENGINES = {
    'aiida.calculations:cp2k': 'cp2k',
    'aiida.calculations:quantumespresso.pw': 'qe',
    'aiida.calculations:vasp.vasp': 'vasp',
    'aiida.calculations:glassml.potential_label': 'potential',
}
LABELLING_PROCESS_TYPES = tuple(LABELLING_ENGINES)
#: the engine that is a teacher potential, not DFT
TEACHER_ENGINE = 'potential'
FIT_PROCESS_TYPES = ('aiida.calculations:glassml.pacemaker',)
MD_PROCESS_TYPES = ('aiida.calculations:glassml.ase_md', 'aiida.calculations:glassml.lammps_md')
#: graph files trace_graph writes; all but .dot need graphviz's `dot` program
GRAPH_FORMATS = ('.dot', '.png', '.svg', '.pdf')
#: the most lines of the path trace reports (steps from the node back): a sketch for people, the graph has the rest
PATH_STEPS = 12


class ProvenanceError(ValueError):
    """Bad input to a provenance tool, with a message naming the problem and the fix."""


def labelling_calculations(node: orm.Node) -> list[orm.CalcJobNode]:
    """Every labelling CalcJob upstream of ``node`` (a potential, a training set, a figure), in one QueryBuilder query,
    oldest first. For a potential fitted by the active-learning loop these are the calculations whose frames it was
    fitted on: the loop keeps its held-out test set out of the fit, so test labels are not upstream."""
    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'uuid': node.uuid}, tag='target')
    query.append(orm.CalcJobNode, with_descendants='target', filters={'process_type': {'in': list(LABELLING_PROCESS_TYPES)}},
                 project='*')  # fmt: skip
    query.order_by({orm.CalcJobNode: {'ctime': 'asc'}})
    query.distinct()  # a calculation upstream along two paths (a set merged and also used alone) is listed once
    return query.all(flat=True)


# ------------------------------------------------------------------------------------------------ trace
@dataclasses.dataclass
class LabellingCalculation:
    """One labelling CalcJob upstream. ``n_frames``: frames it contributed to the training sets made directly from
    labelling (0 for a calculation that gave none, e.g. a failed SCF); None when no such set is upstream."""

    pk: int
    uuid: str
    process_type: str
    engine: str
    exit_status: int | None
    n_frames: int | None


@dataclasses.dataclass
class ProvenanceTrace:
    """What stands behind a node, from its data provenance (CREATE and INPUT_CALC links, followed backwards).

    ``counts``:

    - ``dft_calculations``: engine -> number of DFT labelling CalcJobs; ``teacher_calculations``: labelling CalcJobs of
      a teacher potential (not DFT).
    - ``labelled_frames``: frames as labelled, summed over the distinct ``labelled_sets`` (TrainingSetData made
      directly from labelling CalcJobs' outputs). Merged, appended and train/test sets are made from other sets, so
      they are not counted again; frames a merge drops as duplicates, or a fit holds out, still count as labelled.
    - ``imported_sets``/``imported_frames``: upstream TrainingSetData made by no calculation (imported from files).
    - ``fits``: pacemaker CalcJobs; ``md_runs``: ASE and LAMMPS MD CalcJobs; ``other_calculations``: process label ->
      number of the other CalcJobs; ``calcfunctions``: number of calcfunctions.
    """

    node: dict
    start: list[int]
    labelling_calculations: list[LabellingCalculation]
    counts: dict
    path: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def trace(node: orm.Node) -> ProvenanceTrace:
    """The provenance of ``node`` (a figure, table, potential, dataset, calculation, or a workflow: then from its
    outputs, or from the calculations it called when it has none) in a few QueryBuilder queries."""
    start = _start_nodes(node)
    start_ids = [n.pk for n in start]
    processes = _upstream_calculations(start_ids)
    sets = _upstream_training_sets(start_ids)
    direct, feeding = _sets_made_by_labelling([row['id'] for row in sets])
    frames_per_calc = _frames_per_calculation(direct)

    labelling, dft, other = [], collections.Counter(), collections.Counter()
    teacher = fits = md_runs = calcfunctions = 0
    for row in processes:
        process_type = row['process_type'] or ''
        if process_type in LABELLING_ENGINES:
            engine = LABELLING_ENGINES[process_type]
            labelling.append(LabellingCalculation(
                pk=row['id'], uuid=row['uuid'], process_type=process_type, engine=engine,
                exit_status=row['exit_status'],
                n_frames=frames_per_calc.get(row['uuid'], 0) if row['uuid'] in feeding else None,
            ))  # fmt: skip
            if engine == TEACHER_ENGINE:
                teacher += 1
            else:
                dft[engine] += 1
        elif process_type in FIT_PROCESS_TYPES:
            fits += 1
        elif process_type in MD_PROCESS_TYPES:
            md_runs += 1
        elif row['node_type'].startswith('process.calculation.calcfunction.'):
            calcfunctions += 1
        else:
            other[row['process_label'] or process_type] += 1
    imported = [row for row in sets if not row['has_creator']]
    counts = {
        'dft_calculations': dict(sorted(dft.items())),
        'teacher_calculations': teacher,
        'labelled_frames': sum(n_frames for n_frames in direct.values()),
        'labelled_sets': len(direct),
        'imported_sets': len(imported),
        'imported_frames': sum(row['n_frames'] or 0 for row in imported),
        'fits': fits,
        'md_runs': md_runs,
        'other_calculations': dict(sorted(other.items())),
        'calcfunctions': calcfunctions,
    }  # fmt: skip
    return ProvenanceTrace(node=_summary(node), start=start_ids, labelling_calculations=labelling, counts=counts,
                           path=_path(node))  # fmt: skip


def _start_nodes(node: orm.Node) -> list[orm.Node]:
    """A workflow's provenance is that of its outputs (RETURN links; the data provenance does not pass through
    workflows); a workflow without outputs (failed early) is traced from the calculations it called."""
    if not isinstance(node, orm.WorkflowNode):
        return [node]
    outputs = [link.node for link in node.base.links.get_outgoing(link_type=LinkType.RETURN).all()]
    if outputs:
        return outputs
    return [n for n in node.called_descendants if isinstance(n, orm.CalculationNode)]


def _upstream_calculations(start_ids: list[int]) -> list[dict]:
    """Every calculation upstream of the start nodes (and the start nodes that are calculations), oldest first."""
    keys = ['id', 'uuid', 'process_type', 'node_type', 'attributes.exit_status', 'attributes.process_label', 'ctime']
    rows = {}
    if start_ids:
        query = orm.QueryBuilder()
        query.append(orm.Node, filters={'id': {'in': start_ids}}, tag='target')
        query.append(orm.CalculationNode, with_descendants='target', project=keys)
        rows.update({values[0]: values for values in query.all()})
        itself = orm.QueryBuilder().append(orm.CalculationNode, filters={'id': {'in': start_ids}}, project=keys)
        rows.update({values[0]: values for values in itself.all()})
    names = ['id', 'uuid', 'process_type', 'node_type', 'exit_status', 'process_label', 'ctime']
    return sorted((dict(zip(names, values)) for values in rows.values()), key=lambda row: (row['ctime'], row['id']))


def _upstream_training_sets(start_ids: list[int]) -> list[dict]:
    """Every TrainingSetData upstream of (or among) the start nodes: id, n_frames, and whether a calculation made it."""
    from aiida_glassml.data.training_set import TrainingSetData

    ids = set()
    if start_ids:
        query = orm.QueryBuilder()
        query.append(orm.Node, filters={'id': {'in': start_ids}}, tag='target')
        query.append(TrainingSetData, with_descendants='target', project='id')
        ids.update(query.all(flat=True))
        ids.update(orm.QueryBuilder().append(TrainingSetData, filters={'id': {'in': start_ids}}, project='id')
                   .all(flat=True))  # fmt: skip
    if not ids:
        return []
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={'id': {'in': sorted(ids)}}, project=['id', 'attributes.n_frames'])
    made = orm.QueryBuilder()
    made.append(TrainingSetData, filters={'id': {'in': sorted(ids)}}, project='id', tag='set')
    made.append(orm.CalculationNode, with_outgoing='set')
    created = set(made.all(flat=True))
    return [{'id': pk, 'n_frames': n_frames, 'has_creator': pk in created} for pk, n_frames in query.all()]


def _sets_made_by_labelling(set_ids: list[int]) -> tuple[dict[int, int], set[str]]:
    """Of the given TrainingSetData, those whose creator took an output of a labelling CalcJob (id -> n_frames), and
    the UUIDs of the labelling CalcJobs that fed them."""
    from aiida_glassml.data.training_set import TrainingSetData

    if not set_ids:
        return {}, set()
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={'id': {'in': set_ids}}, project=['id', 'attributes.n_frames'], tag='set')
    query.append(orm.CalculationNode, with_outgoing='set', tag='creator')
    query.append(orm.Data, with_outgoing='creator', tag='source')
    labelling = {'process_type': {'in': list(LABELLING_PROCESS_TYPES)}}
    query.append(orm.CalcJobNode, with_outgoing='source', filters=labelling, project='uuid')
    query.distinct()
    rows = query.all()
    return {pk: n_frames or 0 for pk, n_frames, _ in rows}, {uuid for _, _, uuid in rows}


def _frames_per_calculation(direct_sets: dict[int, int]) -> dict[str, int]:
    """Labelling CalcJob UUID -> frames, from the per-frame ``source_uuid`` of the sets made directly from labelling
    (their ``frames.json`` only: the arrays are not read)."""
    from aiida_glassml.data.training_set import TrainingSetData

    counts = collections.Counter()
    for pk in direct_sets:
        node = orm.load_node(pk)
        metadata = json.loads(node.base.repository.get_object_content(TrainingSetData.JSON, mode='r'))['metadata']
        counts.update(frame.get('source_uuid') for frame in metadata)
    return dict(counts)


# ------------------------------------------------------------------------------------------------ path
def _summary(node: orm.Node) -> dict:
    summary = {'pk': node.pk, 'uuid': node.uuid, 'type': type(node).__name__, 'label': node.label or ''}
    if isinstance(node, orm.ProcessNode):
        summary.update(process_label=node.process_label, exit_status=node.exit_status)
    return summary


def describe(node: orm.Node) -> str:
    """One short phrase naming a node for people: ``TrainingSetData<12> 40 frames``, ``EvaluatePotentialCalculation<9>``."""
    from aiida_glassml.data.training_set import TrainingSetData

    if isinstance(node, orm.ProcessNode):
        text = f'{node.process_label or type(node).__name__}<{node.pk}>'
        if node.process_type in LABELLING_ENGINES:
            text += f' labelling ({LABELLING_ENGINES[node.process_type]})'
        if node.exit_status not in (0, None):
            text += f' [exit {node.exit_status}]'
        elif not node.is_terminated:
            text += f' [{node.process_state.value if node.process_state else "created"}]'
        return text
    text = f'{type(node).__name__}<{node.pk}>'
    if isinstance(node, TrainingSetData):
        text += f' {_plural(node.n_frames, "frame")}'
    elif isinstance(node, orm.SinglefileData):
        text += f' {node.filename}'
    if node.label:
        text += f' "{node.label}"'
    return text


def _neighbours(node: orm.Node, link_type: LinkType) -> list[dict]:
    """The data linked to ``node`` by ``link_type`` (inputs of a calculation, outputs of a workflow) in two queries,
    without loading them: link label, id, node type, ctime, and whether a calculation made the node."""
    query = orm.QueryBuilder()
    query.append(orm.ProcessNode, filters={'id': node.pk}, tag='process')
    relation = {'with_outgoing': 'process'} if link_type is LinkType.INPUT_CALC else {'with_incoming': 'process'}
    query.append(orm.Data, **relation, edge_filters={'type': link_type.value}, edge_project='label',
                 project=['id', 'node_type', 'ctime'])  # fmt: skip
    rows = [dict(zip(('id', 'node_type', 'ctime', 'label'), values)) for values in query.all()]
    rows = [row for row in rows if not row['node_type'].startswith('data.core.code.')]
    if rows:
        made = orm.QueryBuilder()
        made.append(orm.Data, filters={'id': {'in': [row['id'] for row in rows]}}, project='id', tag='data')
        made.append(orm.CalculationNode, with_outgoing='data')
        created = set(made.all(flat=True))
        for row in rows:
            row['has_creator'] = row['id'] in created
    return rows


def _rank(row: dict) -> tuple:
    """Which input a path follows: data made by a calculation, training sets first (they lead to the labels), then
    potentials, trajectories, structures; among equals the newest (most made before it: a merged set over its parts)."""
    from aiida_glassml.data.ace_potential import AcePotentialData
    from aiida_glassml.data.training_set import TrainingSetData

    classes = (TrainingSetData, AcePotentialData, orm.TrajectoryData, orm.StructureData)
    kinds = [cls._plugin_type_string for cls in classes]
    kind = kinds.index(row['node_type']) if row['node_type'] in kinds else len(kinds)
    return not row['has_creator'], kind, -row['ctime'].timestamp(), row['label']


def _path(node: orm.Node) -> list[str]:
    """A few steps from ``node`` back (node <- creator <- its input ...), following one input per calculation, up
    to a labelling CalcJob or a node no calculation made."""
    lines = [describe(node)]
    if isinstance(node, orm.WorkflowNode):
        outputs = _neighbours(node, LinkType.RETURN)
        if not outputs:
            return lines + ['(no outputs)']
        best = min(outputs, key=_rank)
        node = orm.load_node(best['id'])
        lines.append(f'-> output `{best["label"]}`: {describe(node)}' + _of(len(outputs), 'outputs'))
    while len(lines) <= PATH_STEPS:
        calculation = node if isinstance(node, orm.CalculationNode) else getattr(node, 'creator', None)
        if calculation is None:
            break
        if calculation is not node:
            lines.append(f'<- {describe(calculation)}')
        if calculation.process_type in LABELLING_ENGINES:
            break
        inputs = _neighbours(calculation, LinkType.INPUT_CALC)
        if not inputs:
            break
        best = min(inputs, key=_rank)
        node = orm.load_node(best['id'])
        lines.append(f'<- input `{best["label"]}`: {describe(node)}' + _of(len(inputs), 'inputs'))
    if len(lines) > PATH_STEPS:
        lines = lines[: PATH_STEPS - 1] + ['<- ... (see --graph for the whole graph)']
    return lines


def _of(total: int, what: str) -> str:
    return f' (1 of {total} {what})' if total > 1 else ''


def _plural(count: int, noun: str) -> str:
    return f'{count} {noun}' + ('' if count == 1 else 's')


# ------------------------------------------------------------------------------------------------ text
def format_trace(result: ProvenanceTrace, max_calculations: int = 20) -> str:
    """The trace for people: what the node is, the labelling calculations, the counts per stage and the path."""
    counts = result.counts
    node = result.node
    name = node.get('process_label') or node['type']
    lines = [f'Provenance of {name}<{node["pk"]}> {node["label"]}'.rstrip() + f' ({node["uuid"]})']
    if len(result.start) != 1 or result.start[0] != node['pk']:
        lines.append(f'  traced from {len(result.start)} nodes: {", ".join(map(str, result.start[:10]))}'
                     + (' ...' if len(result.start) > 10 else ''))  # fmt: skip
    dft = ', '.join(f'{engine} {n}' for engine, n in counts['dft_calculations'].items()) or 'none'
    lines.append(f'DFT calculations: {sum(counts["dft_calculations"].values())} ({dft})')
    if counts['teacher_calculations']:
        lines.append(f'Teacher-potential labelling calculations (not DFT): {counts["teacher_calculations"]}')
    for calc in result.labelling_calculations[:max_calculations]:
        frames = '? frames' if calc.n_frames is None else _plural(calc.n_frames, 'frame')
        lines.append(f'  {calc.engine:<9} pk {calc.pk:<8} exit {calc.exit_status}  {frames}')
    if len(result.labelling_calculations) > max_calculations:
        lines.append(f'  ... and {len(result.labelling_calculations) - max_calculations} more (--json lists all)')
    lines.append(f'Labelled frames: {counts["labelled_frames"]} in {counts["labelled_sets"]} sets made directly by '
                 'labelling (as labelled: later merges and splits are not counted again)')  # fmt: skip
    if counts['imported_sets']:
        lines.append(f'Imported frames: {counts["imported_frames"]} in {counts["imported_sets"]} sets from files')
    lines.append(f'Fits (pacemaker): {counts["fits"]}')
    lines.append(f'MD runs: {counts["md_runs"]}')
    other = ', '.join(f'{label} {n}' for label, n in counts['other_calculations'].items()) or 'none'
    lines.append(f'Other calculations: {other}; calcfunctions: {counts["calcfunctions"]}')
    lines.append('Path:')
    lines.extend(f'  {step}' for step in result.path)
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------ graph
def check_graph_path(path: str | pathlib.Path) -> pathlib.Path:
    """Raise ProvenanceError (one line naming the fix) unless ``trace_graph`` can write ``path``."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in GRAPH_FORMATS:
        raise ProvenanceError(f'{path}: unknown graph format `{suffix or "(none)"}`; name the file '
                              f'{" or ".join("*" + s for s in GRAPH_FORMATS)}.')  # fmt: skip
    if not path.parent.is_dir():
        raise ProvenanceError(f'{path}: folder {path.parent} does not exist; create it first (mkdir -p {path.parent}).')
    if suffix != '.dot' and shutil.which('dot') is None:
        raise ProvenanceError(f'{path}: a {suffix} graph needs the graphviz `dot` program, which is not installed; '
                              'install graphviz (`apt-get install graphviz`) or write a .dot file.')  # fmt: skip
    return path


def trace_graph(node: orm.Node, path: str | pathlib.Path) -> pathlib.Path:
    """Draw the upstream graph of ``node`` (CREATE and INPUT_CALC links back; for a workflow, of its outputs) with
    aiida's ``Graph``. ``.dot`` writes the graphviz source (no graphviz needed); ``.png``, ``.svg``, ``.pdf`` need the
    ``dot`` program. Checked before anything is written: ProvenanceError otherwise."""
    from aiida.tools.visualization import Graph

    path = check_graph_path(path)
    graph = Graph(graph_attr={'rankdir': 'TB'})
    for origin in _start_nodes(node):
        graph.recurse_ancestors(origin, link_types=('create', 'input_calc'), annotate_links='both')
    if isinstance(node, orm.WorkflowNode):
        graph.add_outgoing(node, link_types=('return',), annotate_links='both')
    if path.suffix.lower() == '.dot':
        path.write_text(graph.graphviz.source)
    else:
        path.write_bytes(graph.graphviz.pipe(format=path.suffix.lower().lstrip('.')))
    return path
