"""Every stage trace() counts, on a hand-built graph of the whole chain (CP2K and a failed QE job -> their labelled
set, merged with an imported set -> pacemaker fit -> LAMMPS MD -> trajectory analysis -> figure): the calculations are
nodes linked as the engine links them, without running anything, so the test costs a second."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_glassml.data.training_set import TrainingSetData
from aiida_glassml.tools.provenance import format_trace, trace


def labelled_frames(sources: list) -> TrainingSetData:
    """A set of one small frame per entry of ``sources`` (a calculation, whose UUID the frame records, or None)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for index, _ in enumerate(sources):
        atoms = Atoms('NaO', positions=[[0, 0, 0], [2.0 + 0.1 * index, 0, 0]], cell=[6, 6, 6], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0 - index, forces=np.zeros((2, 3)))
        frames.append(atoms)
    metadata = [{'source_uuid': source.uuid if source is not None else None} for source in sources]
    return TrainingSetData.from_atoms(frames, metadata=metadata, level_of_theory={'engine': 'cp2k'})


def calculation(cls, process_type: str, label: str, inputs: dict, exit_status: int = 0, caller=None):
    node = cls()
    node.process_type = process_type
    node.set_process_label(label)
    node.set_process_state('finished')
    node.set_exit_status(exit_status)
    for link_label, data in inputs.items():
        node.base.links.add_incoming(data, LinkType.INPUT_CALC, link_label)
    if caller is not None:
        node.base.links.add_incoming(caller, LinkType.CALL_CALC, 'call')
    return node.store()


def output(data: orm.Data, creator: orm.ProcessNode, link_label: str) -> orm.Data:
    data.base.links.add_incoming(creator, LinkType.CREATE, link_label)
    return data.store()


@pytest.fixture(scope='module')
def chain(aiida_profile):
    structure = orm.StructureData(cell=[[6, 0, 0], [0, 6, 0], [0, 0, 6]]).store()
    cp2k = calculation(orm.CalcJobNode, 'aiida.calculations:cp2k', 'Cp2kCalculation', {'structure': structure})
    qe = calculation(orm.CalcJobNode, 'aiida.calculations:quantumespresso.pw', 'PwCalculation',
                     {'structure': structure}, exit_status=400)  # fmt: skip
    retrieved = output(orm.FolderData(), cp2k, 'retrieved')
    parameters = output(orm.Dict({'energy': -1.0}), qe, 'output_parameters')
    sources = {'retrieved': retrieved, 'output_parameters': parameters}
    collect = calculation(orm.CalcFunctionNode, 'aiida_glassml.workflows.label.collect_training_set',
                          'collect_training_set', sources)  # fmt: skip
    # a job stopped by its walltime still gave a frame: failed, yet its frames count
    labelled = output(labelled_frames([cp2k, cp2k, qe]), collect, 'training_set')
    imported = labelled_frames([None, None]).store()
    merge = calculation(orm.CalcFunctionNode, 'aiida_glassml.calcfunctions.training_set.merge_training_sets',
                        'merge_training_sets', {'set_0000': labelled, 'set_0001': imported})  # fmt: skip
    merged = output(labelled_frames([cp2k, cp2k, qe, None, None]), merge, 'training_set')
    study = orm.WorkChainNode()  # a study that failed before it returned anything
    study.set_process_label('GlassStudyWorkChain')
    study.set_process_state('finished')
    study.set_exit_status(300)
    study.store()
    fit = calculation(orm.CalcJobNode, 'aiida.calculations:glassml.pacemaker', 'PacemakerCalculation',
                      {'dataset': merged}, caller=study)  # fmt: skip
    potential = output(orm.SinglefileData.from_string('potential', 'potential.yaml'), fit, 'potential')
    md = calculation(orm.CalcJobNode, 'aiida.calculations:glassml.lammps_md', 'LammpsMDCalculation',
                     {'structure': structure, 'potential': potential})  # fmt: skip
    trajectory = output(orm.ArrayData(), md, 'trajectory')
    analysis = calculation(orm.CalcJobNode, 'aiida.calculations:glassml.trajectory_analysis',
                           'TrajectoryAnalysisCalculation', {'trajectory': trajectory})  # fmt: skip
    results = output(orm.ArrayData(), analysis, 'results')
    plot = calculation(orm.CalcFunctionNode, 'aiida_glassml.calcfunctions.analysis.plot_msd', 'plot_msd',
                       {'results': results})  # fmt: skip
    figure = output(orm.SinglefileData.from_string('png', 'msd.png'), plot, 'figure')
    return {'cp2k': cp2k, 'qe': qe, 'fit': fit, 'md': md, 'figure': figure, 'study': study, 'merged': merged}


def test_every_stage_is_counted(chain):
    result = trace(chain['figure'])
    assert result.counts == {
        'dft_calculations': {'cp2k': 1, 'qe': 1}, 'teacher_calculations': 0,
        'labelled_frames': 3, 'labelled_sets': 1, 'imported_sets': 1, 'imported_frames': 2,
        'fits': 1, 'md_runs': 1, 'other_calculations': {'TrajectoryAnalysisCalculation': 1}, 'calcfunctions': 3,
    }  # fmt: skip
    assert [(c.pk, c.engine, c.exit_status, c.n_frames) for c in result.labelling_calculations] == [
        (chain['cp2k'].pk, 'cp2k', 0, 2), (chain['qe'].pk, 'qe', 400, 1),
    ]  # fmt: skip


def test_long_path_is_cut_short(chain):
    path = trace(chain['figure']).path
    assert path[:4] == [
        f'SinglefileData<{chain["figure"].pk}> msd.png', f'<- plot_msd<{chain["figure"].creator.pk}>',
        f'<- input `results`: ArrayData<{chain["figure"].creator.inputs.results.pk}>',
        f'<- TrajectoryAnalysisCalculation<{chain["figure"].creator.inputs.results.creator.pk}>',
    ]  # fmt: skip
    # the MD's potential (made by the fit) is followed, not its structure (made by no calculation)
    potential = chain['md'].inputs.potential
    assert f'<- input `potential`: SinglefileData<{potential.pk}> potential.yaml (1 of 2 inputs)' in path
    assert f'<- PacemakerCalculation<{chain["fit"].pk}>' in path
    assert len(path) == 12 and path[-1] == '<- ... (see --graph for the whole graph)'


def test_failed_workflow_without_outputs_is_traced_from_what_it_called(chain):
    result = trace(chain['study'])
    assert result.start == [chain['fit'].pk]
    assert result.counts['fits'] == 1 and result.counts['md_runs'] == 0
    assert result.counts['dft_calculations'] == {'cp2k': 1, 'qe': 1} and result.counts['labelled_frames'] == 3
    assert result.path == [f'GlassStudyWorkChain<{chain["study"].pk}> [exit 300]', '(no outputs)']


def test_text_shows_engines_exit_statuses_and_imports(chain):
    text = format_trace(trace(chain['figure']))
    assert 'DFT calculations: 2 (cp2k 1, qe 1)' in text
    assert f'  qe        pk {chain["qe"].pk:<8} exit 400  1 frame\n' in text
    assert 'Imported frames: 2 in 1 sets from files' in text
    assert 'Other calculations: TrajectoryAnalysisCalculation 1; calcfunctions: 3' in text
    assert 'Teacher-potential' not in text
