"""A MACE training stopped at its walltime resumes from its checkpoints: real mace_run_train (in .venv-mace) trains a
tiny model for 2 epochs, and a second job given the first one's remote folder as ``parent_folder`` continues from its
latest checkpoint (``--restart_latest``) to epoch 4 instead of starting again. FitMaceWorkChain's handler turns a
walltime stop into exactly that restart (a fake stopped job: the direct scheduler here has no walltime)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ProcessHandlerReport, run_get_node
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from plumpy import ProcessState

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.fitting import mace
from aiida_glassml.workflows.fit_mace import FitMaceWorkChain, MaceTrainCalculation

SETTINGS = {**FitMaceWorkChain.get_protocol_inputs('fast')['mace']['settings'], 'eval_interval': 1, 'patience': 10,
            'test_fraction': None}  # fmt: skip


@pytest.fixture(scope='module')
def mace_codes(aiida_profile):
    from aiida_glassml.tools.setup import MACE_PYTHON_LABEL, MACE_TRAIN_LABEL, find_mace_venv, register_mace_codes

    venv = find_mace_venv()
    if venv is None:
        pytest.skip('no MACE venv (.venv-mace beside this venv): `make install-mace`')
    messages = []
    registered = register_mace_codes('localhost', echo=messages.append, venv=venv)
    assert set(registered) == {MACE_TRAIN_LABEL, MACE_PYTHON_LABEL}, messages
    return orm.load_code(f'{MACE_TRAIN_LABEL}@localhost'), orm.load_code(f'{MACE_PYTHON_LABEL}@localhost')


@pytest.fixture(scope='module')
def dataset(aiida_profile, reference_test_set_path):
    from aiida_glassml.data import TrainingSetData

    reference = FrameSet.read_pacemaker_pickle(reference_test_set_path)
    small = np.flatnonzero(reference.n_atoms == 100)
    return TrainingSetData(reference.select(sorted(np.random.default_rng(3).permutation(small)[:10]))).store()


def _epochs(calc) -> tuple[list[int], str]:
    """The epochs a job's training log reports, and the log."""
    log = calc.outputs.retrieved.base.repository.get_object_content(mace.FILES['train_stdout'])
    return sorted({int(n) for n in re.findall(r'Epoch (\d+)', log)}), log


@pytest.mark.slow
def test_training_resumes_from_the_latest_checkpoint(mace_codes, dataset):
    train, python = mace_codes

    def job(epochs: int, parent=None):
        inputs = {'code': train, 'python_code': python, 'train': dataset,
                  'settings': orm.Dict({**SETTINGS, 'max_num_epochs': epochs})}  # fmt: skip
        if parent is not None:
            inputs['parent_folder'] = parent
        _, node = run_get_node(MaceTrainCalculation, **inputs)
        assert node.is_finished_ok, node.exit_message
        return node

    first = job(2)
    assert '--restart_latest' not in first.base.repository.get_object_content('_aiidasubmit.sh')
    second = job(4, parent=first.outputs.remote_folder)
    assert '--restart_latest' in second.base.repository.get_object_content('_aiidasubmit.sh')
    epochs, log = _epochs(second)
    assert 'Loading checkpoint: checkpoints/' in log, log[-2000:]
    assert epochs and min(epochs) >= 1 and max(epochs) >= 2, epochs  # continued, not started at epoch 0
    assert second.outputs.metrics['n_iterations'] > first.outputs.metrics['n_iterations']


def test_walltime_stop_restarts_from_the_remote_checkpoints(mace_codes, dataset, aiida_localhost):
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
    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_filelike(io.BytesIO(b'Epoch 3'), mace.FILES['train_stdout'])
    retrieved.base.links.add_incoming(calc, link_type=LinkType.CREATE, link_label='retrieved')
    retrieved.store()
    assert 400 <= exit_code.status < 500  # restartable
    result = process.handle_out_of_walltime(calc)
    assert isinstance(result, ProcessHandlerReport) and result.do_break and result.exit_code.status == 0
    assert process.ctx.inputs.parent_folder.uuid == remote.uuid
    args = mace.train_cmdline(mace.validate_settings(SETTINGS), restart=True)
    assert f'--checkpoints_dir={mace.CHECKPOINTS}' in args and '--restart_latest' in args
