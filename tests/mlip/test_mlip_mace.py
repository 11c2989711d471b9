"""MACE (mace-torch, in .venv-mace): a tiny model trained here by FitMaceWorkChain on a slice of the published NaFePO4
test set, fine-tuned from that model on other frames (its test error on the same held-out frames must drop), run in
ASE MD through its own python code, and bad input refused before anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory

from aiida_glassml.analysis.elastic import StrainProtocol
from aiida_glassml.common.frames import FrameSet
from aiida_glassml.common.mlip import MlipError
from aiida_glassml.data.mlip_potential import MlipPotentialData, job_code
from aiida_glassml.fitting import mace
from aiida_glassml.fitting.settings import FitSettingsError
from aiida_glassml.fitting.split import split_frameset
from aiida_glassml.md.protocol import NVT, MDProtocol
from aiida_glassml.workflows.fit_mace import FitMaceWorkChain

METRIC_KEYS = {f'{part}_{key}' for part in ('train', 'test')
               for key in ('n_frames', 'n_atoms', 'energy_mae', 'energy_rmse', 'energy_max_error', 'force_mae',
                           'force_rmse')}  # fmt: skip


@pytest.fixture(scope='module')
def mace_venv() -> str:
    from aiida_glassml.tools.setup import MACE_VENV_ENV, find_mace_venv

    venv = find_mace_venv()
    if venv is None:
        pytest.skip(f'no MACE venv (.venv-mace beside this venv, or ${MACE_VENV_ENV}): `make install-mace`')
    return venv


@pytest.fixture(scope='module')
def mace_codes(aiida_profile, mace_venv):
    """mace-train and mace-python, registered as `aiida-glassml setup` registers them (after its check)."""
    from aiida_glassml.tools.setup import MACE_PYTHON_LABEL, MACE_TRAIN_LABEL, register_mace_codes

    messages = []
    registered = register_mace_codes('localhost', echo=messages.append, venv=mace_venv)
    assert set(registered) == {MACE_TRAIN_LABEL, MACE_PYTHON_LABEL}, messages
    return orm.load_code(f'{MACE_TRAIN_LABEL}@localhost'), orm.load_code(f'{MACE_PYTHON_LABEL}@localhost')


@pytest.fixture(scope='module')
def frames(reference_test_set_path) -> dict[str, FrameSet]:
    """Disjoint slices of the 100-atom frames of the published NaFePO4 test set: 20 to train from scratch, 20 to
    fine-tune on."""
    reference = FrameSet.read_pacemaker_pickle(reference_test_set_path)
    small = np.flatnonzero(reference.n_atoms == 100)
    order = np.random.default_rng(7).permutation(small)
    return {'scratch': reference.select(sorted(order[:20])), 'fine_tune': reference.select(sorted(order[20:40]))}


#: the scratch fit: `fast` with half its epochs (the fine-tune keeps all of `fast`: with fewer steps, or frames, its
#: energy error was measured above its starting model's)
SCRATCH_EPOCHS = {'mace': {'settings': {'max_num_epochs': 10, 'patience': 10}}}


@pytest.fixture(scope='module')
def scratch_fit(mace_codes, frames):
    from aiida_glassml.data import TrainingSetData

    dataset = TrainingSetData(frames['scratch']).store()
    builder = FitMaceWorkChain.get_builder_from_protocol(mace_codes[0], dataset, protocol='fast',
                                                         overrides=SCRATCH_EPOCHS)  # fmt: skip
    results, node = run_get_node(builder)
    assert node.exit_status == 0, node.exit_message
    return results, node, dataset


def test_settings_and_command_line():
    settings = mace.validate_settings({'num_channels': 8, 'max_L': 0, 'E0s': {'Na': -1.0}})
    args = mace.train_cmdline(settings)
    assert '--num_channels=8' in args and '--max_L=0' in args and '--E0s={"Na": -1.0}' in args
    assert '--test_file=test.xyz' in args and not any(a.startswith('--foundation_model') for a in args)
    assert '--energy_key=REF_energy' in args and '--forces_key=REF_forces' in args
    tuned = mace.train_cmdline(settings, fine_tune=True, has_test=False)
    assert '--foundation_model=foundation.model' in tuned and '--multiheads_finetuning=False' in tuned
    assert not any(a.startswith(('--num_channels', '--test_file')) for a in tuned)  # the foundation's architecture
    with pytest.raises(FitSettingsError, match=r"unknown MACE setting\(s\) \['channels'\]"):
        mace.validate_settings({'channels': 8})
    with pytest.raises(FitSettingsError, match='`max_L` must be 0, 1, 2 or 3'):
        mace.validate_settings({'max_L': 5})


def test_scratch_fit_has_the_ace_split_and_metrics(scratch_fit, frames):
    """The fast protocol trains a real (tiny) model: the test frames are those FitAceWorkChain's split gives, the
    metrics have FitAceWorkChain's keys and units, and the model loads in the MACE python with its elements."""
    results, node, dataset = scratch_fit
    settings = FitMaceWorkChain.get_protocol_inputs('fast', SCRATCH_EPOCHS)['mace']['settings']
    _, expected_test = split_frameset(frames['scratch'], settings['test_fraction'], settings['seed'])
    assert results['test_set'].get_frameset().frame_hashes() == expected_test.frame_hashes()
    assert results['train_set'].n_frames + results['test_set'].n_frames == dataset.n_frames
    assert results['test_set'].creator.process_label == 'split_training_set'  # FitAceWorkChain's calcfunction

    metrics = results['metrics'].get_dict()
    assert METRIC_KEYS <= set(metrics) and metrics['units'] == {'energy': 'meV/atom', 'force': 'meV/Å'}
    assert metrics['test_n_frames'] == expected_test.n_frames and metrics['n_iterations'] == settings['max_num_epochs']
    assert 0 < metrics['train_force_mae'] < 5000 and metrics['n_parameters'] > 0

    potential = results['potential']
    assert potential.calculator == mace.CALCULATOR and potential.python_code == 'mace-python@localhost'
    assert potential.elements == ['O', 'Na', 'P', 'Fe'] and potential.package_version == '0.3.16'
    assert potential.provenance['training_set'] == results['train_set'].uuid
    assert potential.provenance['calculation'] == node.called[-1].uuid
    with pytest.raises(MlipError, match='loads in the python of code mace-python@localhost, not in this environment'):
        potential.get_calculator()  # mace is not installed in this venv: jobs run it
    # a user's own MACE model file: loaded once through the MACE python before it is stored
    model_file = _model_file(potential)
    mine = MlipPotentialData(calculator=mace.CALCULATOR, model_file=model_file, model_keyword=mace.MODEL_KEYWORD,
                             kwargs={'default_dtype': 'float64'}, python_code='mace-python')  # fmt: skip
    assert mine.elements == potential.elements and mine.base.attributes.get('device_keyword') == 'device'


def _model_file(potential, folder=None):
    import pathlib
    import tempfile

    folder = pathlib.Path(folder or tempfile.mkdtemp())
    return potential.write_files(folder)['model']


def test_fine_tune_lowers_the_test_error_of_its_starting_model(scratch_fit, mace_codes, frames):
    """Fine-tuning the scratch model on 20 other frames (fine-tune route of the NaPSO study's FT-MP0): on the scratch
    fit's held-out frames the fine-tuned model's energy and force errors are below the starting model's."""
    from aiida_glassml.data import TrainingSetData

    results, _, _ = scratch_fit
    start = results['metrics'].get_dict()
    dataset = TrainingSetData(frames['fine_tune']).store()
    builder = FitMaceWorkChain.get_builder_from_protocol(mace_codes[0], dataset, protocol='fast',
                                                         test_set=results['test_set'],
                                                         foundation_model=results['potential'])  # fmt: skip
    tuned, node = run_get_node(builder)
    assert node.exit_status == 0, node.exit_message
    metrics = tuned['metrics'].get_dict()
    assert metrics['test_n_frames'] == start['test_n_frames']
    assert metrics['test_force_mae'] < start['test_force_mae'], (metrics, start)
    assert metrics['test_energy_mae'] < start['test_energy_mae'], (metrics, start)
    origin = tuned['potential'].provenance['model']
    assert origin == f'MACE fine-tuned from MlipPotentialData<{results["potential"].uuid}>'


def test_training_resumes_from_the_latest_checkpoint(scratch_fit, mace_codes):
    """A training stopped at its walltime resumes (FitMaceWorkChain's handler gives the next job the stopped one's
    remote folder, the test below): a job given the scratch fit's remote folder as
    ``parent_folder`` continues from its latest checkpoint with --restart_latest instead of starting at epoch 0."""
    import re

    from aiida_glassml.calculations.mace_train import MaceTrainCalculation

    results, node, _ = scratch_fit
    (first,) = [c for c in node.called if c.process_label == 'MaceTrainCalculation']
    settings = first.inputs.settings.get_dict()
    _, second = run_get_node(MaceTrainCalculation, code=mace_codes[0], python_code=mace_codes[1],
                             train=results['train_set'], test=results['test_set'],
                             parent_folder=first.outputs.remote_folder,
                             settings=orm.Dict({**settings, 'max_num_epochs': settings['max_num_epochs'] + 2}))  # fmt: skip
    assert second.is_finished_ok, second.exit_message
    assert '--restart_latest' in second.base.repository.get_object_content('_aiidasubmit.sh')
    assert '--restart_latest' not in first.base.repository.get_object_content('_aiidasubmit.sh')
    log = second.outputs.retrieved.base.repository.get_object_content(mace.FILES['train_stdout'])
    assert 'Loading checkpoint: checkpoints/' in log, log[-2000:]
    epochs = sorted({int(n) for n in re.findall(r'Epoch (\d+)', log)})
    assert epochs and min(epochs) >= 1, epochs  # continued from a checkpoint, not started again at epoch 0


def test_walltime_stop_restarts_from_the_remote_checkpoints(scratch_fit, mace_codes, aiida_localhost):
    """FitMaceWorkChain's handler turns a walltime stop into a restart from the stopped job's remote folder (a fake
    stopped job: the direct scheduler here has no walltime); the test above shows such a job resumes."""
    from aiida.common.links import LinkType
    from aiida.engine import ProcessHandlerReport
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager
    from plumpy import ProcessState

    from aiida_glassml.calculations.mace_train import MaceTrainCalculation

    dataset = scratch_fit[2]
    builder = FitMaceWorkChain.get_builder_from_protocol(mace_codes[0], dataset, protocol='fast',
                                                         python_code=mace_codes[1])  # fmt: skip
    process = instantiate_process(get_manager().get_runner(), FitMaceWorkChain, **builder._inputs(prune=True))
    process.setup()
    calc = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:glassml.mace_train')
    calc.set_option('resources', {'num_machines': 1})
    calc.set_process_state(ProcessState.FINISHED)
    exit_code = MaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME
    calc.set_exit_status(exit_code.status)
    calc.set_exit_message(exit_code.message)
    calc.store()
    remote = orm.RemoteData(computer=aiida_localhost, remote_path='/tmp/stopped-mace')
    remote.base.links.add_incoming(calc, link_type=LinkType.CREATE, link_label='remote_folder')
    remote.store()
    assert 400 <= exit_code.status < 500  # restartable
    result = process.handle_out_of_walltime(calc)
    assert isinstance(result, ProcessHandlerReport) and result.do_break and result.exit_code.status == 0
    assert process.ctx.inputs.parent_folder.uuid == remote.uuid
    args = mace.train_cmdline(mace.validate_settings(None), restart=True)
    assert f'--checkpoints_dir={mace.CHECKPOINTS}' in args and '--restart_latest' in args


def test_ase_md_runs_the_model_on_its_own_python(scratch_fit, mace_codes, frames, installed_code):
    """A few NVT steps with the trained model: the builder helper picks mace-python; the glassml-python code is
    refused with one line, before anything is stored."""
    results, _, _ = scratch_fit
    potential = results['potential']
    glassml_python = installed_code('python', 'glassml.ase_md', label='glassml-python')
    assert job_code(potential, glassml_python).uuid == mace_codes[1].uuid
    protocol = MDProtocol(stages=[NVT(300.0, 0.004)], timestep=0.001, thermo_interval=1, dump_interval=2, seed=1)
    builder = CalculationFactory('glassml.ase_md').get_builder()
    builder.code = job_code(potential, glassml_python)
    builder.structure = orm.StructureData(ase=frames['scratch'].to_atoms()[0])
    builder.protocol = orm.Dict(protocol.to_dict())
    builder.potential = potential
    out, node = run_get_node(builder)
    assert node.exit_status == 0, node.exit_message
    summary = out['results'].get_dict()
    assert summary['stop_reason'] == 'completed' and summary['n_steps'] == 4
    assert summary['versions']['mace-torch'] == '0.3.16' and 'MACECalculator' in summary['engine_version']
    assert np.all(np.isfinite(out['thermo'].get_array('potential_energy')))


def test_bad_input_is_refused_before_anything_is_stored(scratch_fit, mace_codes, frames, installed_code, node_count,
                                                        tmp_path):  # fmt: skip
    from aiida_glassml.data import TrainingSetData

    results, _, _ = scratch_fit
    potential = results['potential']
    glassml_python = installed_code('python', 'glassml.ase_md', label='glassml-python')
    structure = orm.StructureData(ase=frames['scratch'].to_atoms()[0])
    protocol = orm.Dict(MDProtocol(stages=[NVT(300.0, 0.004)], timestep=0.001, seed=1).to_dict())
    lithium = TrainingSetData(_with_lithium(frames['fine_tune']))
    broken = tmp_path / 'broken.model'
    broken.write_text('not a MACE model\n')
    before = node_count()

    with pytest.raises(MlipError, match=r'model file .*broken\.model does not load with '
                                        r'mace\.calculators:MACECalculator'):  # fmt: skip
        MlipPotentialData(calculator=mace.CALCULATOR, model_file=broken, model_keyword=mace.MODEL_KEYWORD,
                          python_code='mace-python')  # fmt: skip
    with pytest.raises(MlipError, match=r"python_code 'no-such-python' is not one registered code"):
        MlipPotentialData(calculator=mace.CALCULATOR, model_file=broken, model_keyword=mace.MODEL_KEYWORD,
                          python_code='no-such-python')  # fmt: skip
    with pytest.raises(ValueError, match=r'loads only in the python of code mace-python@localhost, but the job runs '
                                         r'on code glassml-python@localhost'):  # fmt: skip
        run_get_node(CalculationFactory('glassml.ase_md'), code=glassml_python, structure=structure,
                     protocol=protocol, potential=potential)  # fmt: skip
    with pytest.raises(ValueError, match=r'loads only in the python of code mace-python@localhost, but the job runs '
                                         r'on code glassml-python@localhost'):  # fmt: skip
        run_get_node(CalculationFactory('glassml.elastic_ase'), code=glassml_python, structure=structure,
                     strain=orm.Dict(StrainProtocol().to_dict()), potential=potential)  # fmt: skip
    with pytest.raises(FitSettingsError, match=r"the foundation model has no parameters for \['Li'\]"):
        FitMaceWorkChain.get_builder_from_protocol(mace_codes[0], lithium, protocol='fast',
                                                   foundation_model=potential)  # fmt: skip
    with pytest.raises(FitSettingsError, match='`E0s: foundation` needs a `foundation_model`'):
        FitMaceWorkChain.get_builder_from_protocol(mace_codes[0], lithium, protocol='fast',
                                                   overrides={'mace': {'settings': {'E0s': 'foundation'}}})  # fmt: skip
    assert node_count() == before


def _with_lithium(frames: FrameSet) -> FrameSet:
    atoms = frames.to_atoms()
    atoms[0].numbers[0] = 3
    return FrameSet.from_atoms(atoms)


def test_setup_registers_no_mace_codes_from_a_venv_that_cannot_run_them(aiida_profile, node_count, tmp_path):
    """A venv without mace_run_train, or whose python cannot import mace-torch and the job modules, is named with the
    fix; nothing is registered."""
    import os
    import sys

    from aiida_glassml.tools.setup import check_mace_venv, register_mace_codes

    (tmp_path / 'bin').mkdir()
    assert check_mace_venv(str(tmp_path)) == (None, f'{tmp_path} has no mace_run_train; run `make install-mace`')
    os.symlink(sys.executable, tmp_path / 'bin' / 'python')
    (tmp_path / 'bin' / 'mace_run_train').write_text('#!/bin/sh\n')
    (tmp_path / 'bin' / 'mace_run_train').chmod(0o755)
    before, messages = node_count(), []
    assert register_mace_codes('localhost-mace-check', echo=messages.append, venv=str(tmp_path)) == {}
    assert node_count() == before
    assert len(messages) == 1 and 'cannot import mace-torch and the job modules' in messages[0]
    assert 'No module named' in messages[0] and 'make install-mace' in messages[0]
