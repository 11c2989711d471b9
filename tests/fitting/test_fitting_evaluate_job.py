"""EvaluatePotentialCalculation (``glassml.evaluate_potential``): pyace in a job on the venv python, the same numbers
as the pure evaluation, parity PNGs, bad input refused before anything is stored, a failed job kept and reported; and
the per-element offset metrics (pure math)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.fitting.evaluate import evaluate
from aiida_glassml.fitting.metrics import compute_metrics, fit_element_offsets

PNG = b'\x89PNG\r\n\x1a\n'


@pytest.fixture
def potential(reference_potential_yaml, aiida_profile):
    from aiida_glassml.data import AcePotentialData

    return AcePotentialData.get_or_create(reference_potential_yaml)


def _frames_with(frames: FrameSet, index: int, number: int) -> FrameSet:
    import dataclasses

    numbers = frames.numbers.copy()
    numbers[index] = number
    return dataclasses.replace(frames, numbers=numbers)


def test_job_matches_the_pure_evaluation_and_plots(potential, reference_potential_yaml, reference_frames, python_code):
    """The job's metrics and per-frame errors are those of pyace in this process; with parity and a training set it
    stores both PNGs, the provenance links them to the potential and both sets, and the offset metrics are there."""
    from aiida_glassml.calculations.evaluate_potential import EvaluatePotentialCalculation, evaluation_builder
    from aiida_glassml.data import TrainingSetData

    test = TrainingSetData(reference_frames.select(range(0, 436, 40))).store()
    train = TrainingSetData(reference_frames.select(range(5, 436, 60))).store()
    builder = evaluation_builder(potential, test, parity=True, training_set=train)
    assert builder.code.uuid == python_code.uuid
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert node.process_class is EvaluatePotentialCalculation
    metrics = results['metrics'].get_dict()
    expected, errors = evaluate(reference_potential_yaml, test.get_frameset())
    for key in ('n_frames', 'energy_mae', 'energy_rmse', 'force_mae', 'force_rmse', 'energy_mae_offset'):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-9), key
    assert metrics['reference_energy_source'] == 'potential metadata'
    assert metrics['units'] == {'energy': 'meV/atom', 'force': 'meV/Å', 'energy_offsets': 'eV/atom'}
    # a per-element offset can only lower the error; one offset per element of the data
    assert metrics['energy_rmse_offset'] <= metrics['energy_rmse'] + 1e-9
    assert sorted(metrics['energy_offsets']) == ['Fe', 'Na', 'O', 'P']
    stored = results['frame_errors']
    assert np.allclose(stored.get_array('energy_error_per_atom'), errors['energy_error_per_atom'], rtol=0, atol=1e-9)
    assert np.allclose(stored.get_array('force_rmse'), errors['force_rmse'], rtol=0, atol=1e-9)
    assert stored.base.attributes.get('units')['force_mae'] == 'meV/Å'
    for name in ('energy_parity', 'force_parity'):
        assert results[name].get_content(mode='rb')[:8] == PNG
        assert results[name].creator.uuid == node.uuid
    inputs = {link.link_label: link.node.uuid for link in node.base.links.get_incoming().all()}
    assert (inputs['potential'], inputs['dataset'], inputs['training_set']) == (potential.uuid, test.uuid, train.uuid)


def test_run_evaluate_potential_without_parity_stores_no_figures(potential, reference_frames, python_code):
    from aiida_glassml.calcfunctions.potential import run_evaluate_potential
    from aiida_glassml.data import TrainingSetData

    results = run_evaluate_potential(potential, TrainingSetData(reference_frames.select([3, 4])),
                                     {'Fe': 0.0, 'Na': 0.0, 'O': 0.0, 'P': 0.0})  # fmt: skip
    assert sorted(results) == ['frame_errors', 'metrics']
    assert results['metrics']['reference_energy_source'] == 'argument'
    # raw total energies are far off; a per-element offset absorbs most of it
    assert results['metrics']['energy_mae'] > 100 > results['metrics']['energy_mae_offset']


@pytest.mark.parametrize(('case', 'message'), [
    ('uncovered element', "also contains ['V']"),
    ('uncovered element in the training set', "also contains ['V']"),
    ('bad reference energies', 'reference energies must map element symbols'),
    ('reference energies missing an element', "also contains ['P']"),
    ('training set without parity', '`training_set` only appears in the parity plots'),
    ('not a training set', 'dataset must be a TrainingSetData'),
])  # fmt: skip
def test_bad_input_is_refused_before_storing(potential, reference_frames, python_code, node_count, case, message):
    """Through the builder helper and through the CalcJob's own validator alike: one line, nothing stored."""
    from aiida_glassml.calculations.evaluate_potential import EvaluatePotentialCalculation, evaluation_builder
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.data import TrainingSetData

    frames, train = reference_frames.select([0, 1]), None
    kwargs: dict = {'parity': True}
    if case == 'uncovered element':
        frames = _frames_with(frames, 0, 23)
    elif case == 'uncovered element in the training set':
        train = TrainingSetData(_frames_with(frames, 0, 23))
    elif case == 'bad reference energies':
        kwargs['reference_energies'] = {'Na': 'zero'}
    elif case == 'reference energies missing an element':
        kwargs['reference_energies'] = {'Na': 0.0, 'Fe': 0.0, 'O': 0.0}
    elif case == 'training set without parity':
        train, kwargs['parity'] = TrainingSetData(frames), False
    dataset = orm.Dict({'not': 'frames'}) if case == 'not a training set' else TrainingSetData(frames)
    before = node_count()
    if case != 'training set without parity':  # the helper has no way to ask for it
        with pytest.raises(AcePotentialError, match=message.replace('[', r'\[').replace(']', r'\]')):
            evaluation_builder(potential, dataset, training_set=train, **kwargs)
        assert node_count() == before
    if case == 'not a training set':
        return  # the port's type check refuses it
    builder = EvaluatePotentialCalculation.get_builder()
    builder.code, builder.potential, builder.dataset = python_code, potential, dataset
    builder.parity = orm.Bool(kwargs['parity'])
    if train is not None:
        builder.training_set = train
    if 'reference_energies' in kwargs:
        builder.reference_energies = orm.Dict(kwargs['reference_energies'])
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        run_get_node(builder)
    assert node_count() == before


def test_failed_job_is_kept_and_reported(potential, reference_frames, installed_code):
    """A code that dies before writing anything: the job is stored with exit status 300 and the helper's error names
    it (`verdi process report`)."""
    from aiida_glassml.calcfunctions.potential import run_evaluate_potential
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.data import TrainingSetData

    broken = installed_code('false', 'glassml.evaluate_potential', label='python-that-fails')
    failure = r'EvaluatePotentialCalculation<(\d+)> failed with exit status 300'
    with pytest.raises(AcePotentialError, match=failure) as info:
        run_evaluate_potential(potential, TrainingSetData(reference_frames.select([0])), code=broken)
    pk = int(info.value.args[0].split('<')[1].split('>')[0])
    node = orm.load_node(pk)
    assert node.is_failed and node.exit_status == 300 and 'metrics.json' in node.exit_message


def test_element_offsets_are_recovered():
    """Per-element constants added to the predictions are found again (least squares over varied compositions),
    and the errors left are the noise alone; one composition only fixes no constant, yet the errors are those of
    the best single offset (minimum-norm solution)."""
    rng = np.random.default_rng(3)
    n_atoms = rng.integers(20, 60, size=40)
    numbers = np.concatenate([rng.choice([11, 15, 8], size=n) for n in n_atoms])
    energy_ref = rng.normal(-300, 20, size=40)
    frame_of_atom = np.repeat(np.arange(40), n_atoms)
    shift = {11: -1.2, 15: -5.4, 8: 0.7}
    total = np.bincount(frame_of_atom, weights=[shift[z] for z in numbers], minlength=40)
    noise = rng.normal(0.0, 0.002, size=40) * n_atoms  # 2 meV/atom
    fitted = fit_element_offsets(numbers, n_atoms, energy_ref, energy_ref + total + noise)
    assert fitted['rank'] == 3
    assert fitted['offsets'] == pytest.approx({'Na': -1.2, 'P': -5.4, 'O': 0.7}, abs=0.02)
    assert np.sqrt(np.mean(fitted['energy_error_per_atom'] ** 2)) == pytest.approx(2.0, rel=0.35)

    same = np.tile([11, 15, 8, 8, 8], 4)
    n_same = np.array([5, 5, 5, 5])
    de = np.array([0.01, 0.02, 0.03, 0.06]) * 5  # eV per frame: 10, 20, 30, 60 meV/atom
    fitted = fit_element_offsets(same, n_same, np.zeros(4), de)
    assert fitted['rank'] == 1
    assert fitted['energy_error_per_atom'] == pytest.approx([-20.0, -10.0, 0.0, 30.0])


def test_compute_metrics_reports_raw_and_offset_errors(reference_frames):
    frames = reference_frames.select(range(0, 436, 50))
    offsets = np.where(frames.numbers == 11, 0.3, 0.0)  # +0.3 eV per Na atom
    frame_of_atom = np.repeat(np.arange(frames.n_frames), frames.n_atoms)
    energy = frames.energy + np.bincount(frame_of_atom, weights=offsets, minlength=frames.n_frames)
    metrics, _ = compute_metrics(frames, energy, frames.forces)
    assert metrics['energy_mae'] > 10
    assert metrics['energy_mae_offset'] == pytest.approx(0.0, abs=1e-6)
    assert metrics['force_mae'] == 0.0


def test_no_python_code_is_refused_before_storing(potential, reference_frames, installed_code, node_count,
                                                  monkeypatch):  # fmt: skip
    """Without a registered venv python (here: looked up under a label nobody has) the helper and FitAceWorkChain's
    validator (parity plots on) both refuse, naming the fix, before anything is stored."""
    from aiida_glassml.calculations import evaluate_potential as job
    from aiida_glassml.common.ace import AcePotentialError
    from aiida_glassml.data import TrainingSetData
    from aiida_glassml.workflows.fit_ace import FitAceWorkChain

    monkeypatch.setattr(job, 'DEFAULT_CODE_LABEL', 'glassml-python-nowhere')
    dataset = TrainingSetData(reference_frames.select(range(10)))
    before = node_count()
    with pytest.raises(AcePotentialError, match='no unique code `glassml-python-nowhere`.*aiida-glassml setup'):
        job.evaluation_builder(potential, dataset)
    assert node_count() == before
    pacemaker = installed_code('pacemaker', 'glassml.pacemaker')
    installed_code('pace_yaml2yace', 'core.shell')
    installed_code('pace_activeset', 'core.shell')
    before = node_count()
    builder = FitAceWorkChain.get_builder_from_protocol(pacemaker, dataset, protocol='fast')
    with pytest.raises(ValueError, match='no unique code `glassml-python-nowhere`'):
        run_get_node(builder)
    assert node_count() == before
    builder.make_plots = orm.Bool(False)  # no plots, no python code needed: the validator lets it through
    from aiida_glassml.workflows.fit_ace import validate_inputs

    assert validate_inputs(builder._inputs(prune=True)) is None
