"""pacemaker's TensorFlow evaluator (`tensorpot`): the environment check, `balanced` choosing it, registration of
pacemaker-tf, bad input, and a real tensorpot fit through FitAceWorkChain (tiny basis, a few iterations)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.calculations.pacemaker import TENSORPOT_EXTRA, PacemakerCalculation, supports_tensorpot
from aiida_glassml.data import TrainingSetData
from aiida_glassml.fitting import tensorpot
from aiida_glassml.fitting.settings import FitSettingsError, validate_settings
from aiida_glassml.workflows.fit_ace import FitAceWorkChain

WORKING = {'python': '/x/bin/python', 'numpy': '2.3.5', 'tensorflow': '2.20.0', 'tensorpotential': '0.6.2.1',
           'python-ace': '0.4.0rc1', 'gpus': 0}  # fmt: skip


@pytest.fixture(scope='module')
def pacemaker_tf_path() -> str:
    from aiida_glassml.tools.setup import TF_VENV_ENV, find_pacemaker_tf

    path = find_pacemaker_tf()
    if path is None:
        pytest.skip(f'no TensorFlow venv with pacemaker (.venv-tf beside this venv, or ${TF_VENV_ENV}): '
                    '`make install-tf`')
    return path


@pytest.fixture
def pacemaker_tf(aiida_localhost, pacemaker_tf_path):
    from aiida_glassml.tools.setup import PACEMAKER_TF_LABEL, register_pacemaker_tf

    messages = []
    assert register_pacemaker_tf(aiida_localhost.label, echo=messages.append, path=pacemaker_tf_path) == \
        pacemaker_tf_path, messages  # fmt: skip
    return orm.load_code(f'{PACEMAKER_TF_LABEL}@{aiida_localhost.label}')


@pytest.fixture
def pace_codes(installed_code):
    return {
        'pacemaker': installed_code('pacemaker', 'glassml.pacemaker'),
        'yaml2yace_code': installed_code('pace_yaml2yace', 'core.shell'),
        'activeset_code': installed_code('pace_activeset', 'core.shell'),
    }


@pytest.fixture
def dataset(small_frames):
    return TrainingSetData(small_frames, label='nafepo4-30').store()


@pytest.mark.parametrize(
    'change, words',
    [
        ({'tensorpotential': None}, ['tensorpotential', 'not installed', 'make install-tf', 'evaluator: pyace']),
        ({'tensorflow': None}, ['tensorflow', 'not installed', 'pacemaker-tf@localhost']),
        ({'numpy': '2.4.0'}, ['numpy 2.4.0', 'numpy<2.4']),
        ({'import_error': 'ImportError: libcudart.so.12'},
         ['does not import', 'libcudart', 'tensorpotential==0.6.2.1']),
        ({'error': 'exit 127: not found'}, ['cannot check', 'exit 127']),
    ],
)
def test_environment_problems_name_package_version_and_fix(change, words):
    assert tensorpot.problem(WORKING) is None
    message = tensorpot.problem({**WORKING, **change})
    assert message and '\n' not in message
    for word in words:
        assert word in message


def test_settings_alone_accept_tensorpot():
    """Whether tensorpot runs is a property of the pacemaker code's environment, not of the AiiDA process's."""
    assert validate_settings({'evaluator': 'tensorpot', 'optimizer': 'L-BFGS-B'})['optimizer'] == 'L-BFGS-B'


def test_interpreter_of_console_scripts(tmp_path):
    python = tmp_path / 'python3'
    python.write_text('')
    python.chmod(0o755)
    direct = tmp_path / 'direct'
    direct.write_text(f'#!{python}\nimport sys\n')
    long = tmp_path / 'long'  # pip's form for interpreter paths too long for #!
    long.write_text(f"#!/bin/sh\n'''exec' {python} \"$0\" \"$@\"\n' '''\n")
    assert tensorpot.interpreter_of(str(direct)) == str(python)
    assert tensorpot.interpreter_of(str(long)) == str(python)
    assert tensorpot.interpreter_of(str(tmp_path / 'missing')) == str(python)  # falls back to the python beside it


def test_tensorpot_with_pacemaker_lacking_tensorflow(pace_codes, dataset):
    """The .venv pacemaker has no tensorpotential: asking it for tensorpot fails before anything runs, naming the
    package and the fix, from the builder and from the CalcJob's validator alike."""
    code = pace_codes['pacemaker']
    assert not supports_tensorpot(code)
    overrides = {'pacemaker': {'settings': {'evaluator': 'tensorpot'}}}
    with pytest.raises(FitSettingsError, match=r'tensorpotential, which is not installed .*make install-tf'):
        FitAceWorkChain.get_builder_from_protocol(code, dataset, protocol='fast', overrides=overrides)
    builder = PacemakerCalculation.get_builder()
    builder.code, builder.train = code, dataset
    builder.yaml2yace_code, builder.activeset_code = pace_codes['yaml2yace_code'], pace_codes['activeset_code']
    builder.settings = orm.Dict({'evaluator': 'tensorpot', **_TINY})
    with pytest.raises(ValueError, match='evaluator tensorpot needs tensorpotential'):
        run_get_node(builder)
    # balanced keeps pyace + BFGS (the study's optimiser) with this code
    settings = FitAceWorkChain.get_protocol_inputs('balanced', code=code)['pacemaker']['settings']
    assert (settings['evaluator'], settings['optimizer']) == ('pyace', 'BFGS')


def test_balanced_uses_tensorpot_with_lbfgsb(pacemaker_tf, pace_codes):
    assert supports_tensorpot(pacemaker_tf)
    recorded = pacemaker_tf.base.extras.get(TENSORPOT_EXTRA)
    assert recorded['tensorpotential'] == '0.6.2.1' and tensorpot.problem(recorded) is None
    for protocol in ('balanced', 'nafepo4', 'stringent'):
        settings = FitAceWorkChain.get_protocol_inputs(protocol, code=pacemaker_tf)['pacemaker']['settings']
        assert (settings['evaluator'], settings['optimizer']) == ('tensorpot', 'L-BFGS-B')
    # the user's own choice wins; fast stays on pyace; without a code nothing changes
    overrides = {'pacemaker': {'settings': {'optimizer': 'BFGS'}}}
    settings = FitAceWorkChain.get_protocol_inputs('balanced', overrides, code=pacemaker_tf)['pacemaker']['settings']
    assert (settings['evaluator'], settings['optimizer']) == ('tensorpot', 'BFGS')
    fast = FitAceWorkChain.get_protocol_inputs('fast', code=pacemaker_tf)
    assert fast['pacemaker']['settings']['evaluator'] == 'pyace'
    assert 'with_tensorpot' not in FitAceWorkChain.get_protocol_inputs('balanced')
    assert FitAceWorkChain.get_protocol_inputs('balanced')['pacemaker']['settings']['evaluator'] == 'pyace'
    # a remote code is judged by what setup recorded
    remote = orm.Computer(label='tp-remote', hostname='cluster.example', transport_type='core.ssh',
                          scheduler_type='core.direct', workdir='/tmp').store()  # fmt: skip
    code = orm.InstalledCode(computer=remote, filepath_executable='/opt/pacemaker', label='pm').store()
    assert not supports_tensorpot(code)
    code.base.extras.set(TENSORPOT_EXTRA, {**WORKING, 'numpy': '2.4.1'})
    assert not supports_tensorpot(code)
    code.base.extras.set(TENSORPOT_EXTRA, WORKING)
    assert supports_tensorpot(code)


# fast's basis (10 functions per element); tensorpotential 0.6.2.1 cannot build a basis of 6 per element here
_TINY = {'maxiter': 3, 'optimizer': 'L-BFGS-B', 'display_step': 1}


@pytest.mark.slow
def test_real_tensorpot_fit(pacemaker_tf, pace_codes, dataset):
    """A real fit with the TensorFlow evaluator: fast's basis, 3 L-BFGS-B iterations on 30 published frames. No test
    split: TensorFlow would trace its graph again for the test batch (~25 s)."""
    settings = {'evaluator': 'tensorpot', 'test_fraction': None, **_TINY}
    overrides = {'make_plots': False, 'pacemaker': {'settings': settings}}
    builder = FitAceWorkChain.get_builder_from_protocol(pacemaker_tf, dataset, protocol='fast', overrides=overrides)
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_status
    calc = node.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes()[-1]
    retrieved = calc.outputs.retrieved
    text = retrieved.base.repository.get_object_content('input.yaml')
    assert 'evaluator: tensorpot' in text and 'optimizer: L-BFGS-B' in text
    log = retrieved.base.repository.get_object_content('log.txt')
    assert 'tensorpot_version: 0.6.2.1' in log  # pacemaker really ran the TensorFlow backend
    metrics = node.outputs.metrics.get_dict()
    assert 1 <= metrics['n_iterations'] <= 3 and 0 < metrics['n_functions'] <= 4 * 10
    for key in ('train_energy_mae', 'train_force_mae', 'train_energy_rmse', 'train_force_rmse'):
        assert np.isfinite(metrics[key]) and metrics[key] > 0
    assert node.outputs.potential.has_active_set
    reports = [entry.message for entry in orm.Log.collection.get_logs_for(node)]
    assert any('evaluator tensorpot, optimizer L-BFGS-B' in message for message in reports)
