"""trace(): from a figure, a workflow or a labelling CalcJob back to the labelling calculations, with per-stage counts
that do not count a merged set's frames twice; format_trace and trace_graph. The CLI: ``aiida-glassml trace`` agrees
with trace() and draws the graph, ``aiida-glassml export`` writes an archive; bad input gets one line and a non-zero
exit code, and nothing is written. (The export/import round trip, which resets the storage, is test_trace_archive.)"""

from __future__ import annotations

import json

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_glassml.cli import cli
from aiida_glassml.cli.cmd_trace import write_archive
from aiida_glassml.tools.provenance import ProvenanceError, format_trace, labelling_calculations, trace, trace_graph

from .conftest import STRUCTURES_PER_RUN


def teacher_calcjobs(label_node) -> list[orm.CalcJobNode]:
    return [n for n in label_node.called_descendants if isinstance(n, orm.CalcJobNode)]


def test_figure_traces_to_exactly_the_teacher_calcjobs(study):
    result = trace(study.figure)
    expected = {calc.uuid: n for node, n in zip(study.labels, STRUCTURES_PER_RUN) for calc in teacher_calcjobs(node)}
    assert {calc.uuid: calc.n_frames for calc in result.labelling_calculations} == expected
    assert {calc.engine for calc in result.labelling_calculations} == {'potential'}
    assert {calc.exit_status for calc in result.labelling_calculations} == {0}
    listed = [calc.uuid for calc in labelling_calculations(study.figure)]  # each once, though reached along two paths
    assert [calc.uuid for calc in result.labelling_calculations] == listed
    assert result.counts == {
        'dft_calculations': {}, 'teacher_calculations': 2,
        # 2 + 1 labelled; the merged set (3 frames) and the first set reached twice are not counted again
        'labelled_frames': 3, 'labelled_sets': 2, 'imported_sets': 0, 'imported_frames': 0,
        'fits': 0, 'md_runs': 0, 'other_calculations': {'EvaluatePotentialCalculation': 1},  # the parity plots
        'calcfunctions': 3,  # two collect_training_set, merge_training_sets
    }  # fmt: skip
    assert result.node['pk'] == study.figure.pk and result.start == [study.figure.pk]


def test_path_walks_from_the_figure_to_a_labelling_calcjob(study):
    path = trace(study.figure).path
    assert path[0] == f'SinglefileData<{study.figure.pk}> energy_parity.png'
    assert path[1] == f'<- EvaluatePotentialCalculation<{study.figure.creator.pk}>'
    assert path[2] == f'<- input `training_set`: TrainingSetData<{study.merged.pk}> 3 frames (1 of 4 inputs)'
    assert path[3].startswith('<- merge_training_sets<')
    assert any(step.startswith('<- collect_training_set<') for step in path)
    assert path[-1].startswith('<- PotentialLabelCalculation<') and path[-1].endswith('labelling (potential)')
    assert len(path) <= 12


def test_workflow_is_traced_from_its_outputs(study):
    second = study.labels[1]
    result = trace(second)
    (calc,) = teacher_calcjobs(second)
    assert [(c.uuid, c.n_frames) for c in result.labelling_calculations] == [(calc.uuid, STRUCTURES_PER_RUN[1])]
    assert sorted(result.start) == sorted(n.pk for n in (second.outputs.training_set, second.outputs.report))
    assert result.counts['labelled_frames'] == STRUCTURES_PER_RUN[1] and result.counts['calcfunctions'] == 1
    assert result.path[0].startswith(f'LabelWorkChain<{second.pk}>')
    assert result.path[1].startswith('-> output `training_set`: TrainingSetData<')


def test_labelling_calcjob_itself_has_no_set_to_count_frames_in(study):
    (calc,) = teacher_calcjobs(study.labels[0])
    result = trace(calc)
    assert [(c.uuid, c.n_frames) for c in result.labelling_calculations] == [(calc.uuid, None)]
    assert result.counts['teacher_calculations'] == 1 and result.counts['labelled_frames'] == 0
    assert result.path == [f'PotentialLabelCalculation<{calc.pk}> labelling (potential)']


def test_format_trace_names_counts_and_path(study):
    text = format_trace(trace(study.figure))
    assert text.splitlines()[0] == f'Provenance of SinglefileData<{study.figure.pk}> ({study.figure.uuid})'
    assert 'DFT calculations: 0 (none)' in text
    assert 'Teacher-potential labelling calculations (not DFT): 2' in text
    assert 'Labelled frames: 3 in 2 sets made directly by labelling' in text
    assert 'Fits (pacemaker): 0' in text and 'MD runs: 0' in text
    for calc in trace(study.figure).labelling_calculations:
        assert f'pk {calc.pk:<8} exit 0  {calc.n_frames} frame' in text
    assert text.splitlines()[-1].strip().startswith('<- PotentialLabelCalculation<')


def test_dot_graph_holds_the_upstream_nodes(study, tmp_path):
    path = trace_graph(study.figure, tmp_path / 'figure.dot')
    source = path.read_text()
    assert source.startswith('digraph')
    for node in [study.figure, study.merged, study.potential, *sum(map(teacher_calcjobs, study.labels), [])]:
        assert f'N{node.pk} ' in source
    assert f'N{study.labels[0].pk} ' not in source  # data provenance only: workflows are not on it


def test_workflow_graph_shows_the_workflow_and_its_outputs(study, tmp_path):
    source = trace_graph(study.labels[0], tmp_path / 'workflow.dot').read_text()
    assert f'N{study.labels[0].pk} ' in source and f'N{study.labels[0].outputs.training_set.pk} ' in source


@pytest.mark.parametrize(('name', 'message'), [
    ('figure.png', 'a .png graph needs the graphviz `dot` program, which is not installed; install graphviz '
                   '(`apt-get install graphviz`) or write a .dot file.'),
    ('figure.jpg', 'unknown graph format `.jpg`; name the file *.dot or *.png or *.svg or *.pdf.'),
    ('missing/figure.dot', 'does not exist; create it first (mkdir -p'),
])  # fmt: skip
def test_graph_refuses_what_it_cannot_write(study, tmp_path, monkeypatch, name, message):
    monkeypatch.setenv('PATH', str(tmp_path / 'no-graphviz'))  # no `dot`, whether or not this machine has graphviz
    with pytest.raises(ProvenanceError, match='^' + str(tmp_path / name)) as excinfo:
        trace_graph(study.figure, tmp_path / name)
    assert message in str(excinfo.value) and '\n' not in str(excinfo.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ CLI

def invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def archive_uuids(path) -> set[str]:
    from aiida.tools.archive.abstract import get_format

    with get_format().open(path, 'r') as archive:
        return set(archive.querybuilder().append(orm.Node, project='uuid').all(flat=True))


def test_trace_json_agrees_with_trace(study, tmp_path):
    graph = tmp_path / 'figure.dot'
    result = invoke('trace', study.figure.uuid, '--json', '--graph', graph)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {**trace(study.figure).to_dict(), 'graph': str(graph)}
    assert graph.read_text().startswith('digraph') and f'N{study.figure.pk} ' in graph.read_text()


def test_trace_text_by_pk(study):
    result = invoke('trace', study.figure.pk)
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip('\n') == format_trace(trace(study.figure))
    assert 'Labelled frames: 3 in 2 sets made directly by labelling' in result.stdout


def test_export_writes_the_provenance_archive(study, tmp_path):
    archive = tmp_path / 'figure.aiida'
    result = invoke('export', study.figure.pk, archive)
    assert result.exit_code == 0, result.output
    uuids = archive_uuids(archive)
    figure = f'SinglefileData<{study.figure.pk}>'
    assert result.stdout == f'Wrote {len(uuids)} nodes ({figure} and its provenance) to {archive}\n'
    # the provenance back to the teacher jobs, and (default rules) the work chains that called them
    calcs = [calc for node in study.labels for calc in teacher_calcjobs(node)]
    for node in [study.figure, study.figure.creator, study.merged, study.potential, *calcs, *study.labels]:
        assert node.uuid in uuids
    archive.write_bytes(b'an old file')
    again = invoke('export', study.figure.pk, archive, '--force')
    assert again.exit_code == 0, again.output
    assert archive_uuids(archive) == uuids
    # the helper `aiida-glassml study run --archive` uses
    assert write_archive(study.figure, tmp_path / 'again.aiida') == len(uuids)


MISSING_NODE = ('Error: NODE `999999`: no Node found with ID<999999>: No result was found; give a PK, UUID or unique '
                'label of a node in this profile.')


@pytest.mark.parametrize(('args', 'message'), [
    (['trace', '999999'], MISSING_NODE),
    (['export', '999999', '{tmp}/out.aiida'], MISSING_NODE),
    (['export', '{figure}', '{tmp}/missing/out.aiida'],
     'Error: folder {tmp}/missing does not exist; create it first (mkdir -p {tmp}/missing).'),
    (['export', '{figure}', '{tmp}'],
     'Error: FILE {tmp} is a folder; give a file name such as {tmp}/provenance.aiida.'),
    (['export', '{figure}', '{tmp}/existing.aiida'],
     'Error: FILE {tmp}/existing.aiida exists; pass --force to overwrite it, or choose another name.'),
    (['trace', '{figure}', '--graph', '{tmp}/missing/figure.dot'],
     'Error: {tmp}/missing/figure.dot: folder {tmp}/missing does not exist; create it first (mkdir -p {tmp}/missing).'),
    (['trace', '{figure}', '--graph', '{tmp}/figure.svg'],
     'Error: {tmp}/figure.svg: a .svg graph needs the graphviz `dot` program, which is not installed; install '
     'graphviz (`apt-get install graphviz`) or write a .dot file.'),
])  # fmt: skip
def test_bad_input_gets_one_line_and_writes_nothing(study, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv('PATH', str(tmp_path / 'no-graphviz'))  # no `dot`, whether or not this machine has graphviz
    existing = tmp_path / 'existing.aiida'
    existing.write_bytes(b'not an archive')
    fill = {'tmp': tmp_path, 'figure': study.figure.pk}
    result = invoke(*(arg.format(**fill) for arg in args))
    assert result.exit_code != 0
    assert result.output == message.format(**fill) + '\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['existing.aiida']
    assert existing.read_bytes() == b'not an archive'


def test_trace_and_export_are_listed_in_the_help():
    result = invoke('--help')
    assert result.exit_code == 0, result.output
    assert 'trace' in result.output and 'export' in result.output
