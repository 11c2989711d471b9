"""Pure fitting layer: settings validation, input.yaml rendering, split and metrics (no AiiDA)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.fitting import input_yaml, metrics, settings, split
from aiida_glassml.fitting.settings import FitSettingsError, validate_settings
from aiida_glassml.workflows.fit_ace import FitAceWorkChain


def test_defaults_are_the_study_settings():
    s = validate_settings()
    assert s['cutoff'] == 6.5
    assert s['radial_basis'] == 'SBessel'
    assert s['embedding'] == 'FinnisSinclairShiftedScaled'
    assert s['ndensity'] == 8
    assert s['fs_parameters'] == [1, 1, 1, 0.5, 1, 0.75, 1, 0.25, 1, 0.125, 1, 0.375, 1, 0.875, 1, 2]
    assert s['number_of_functions_per_element'] == 250
    assert (s['optimizer'], s['maxiter'], s['ladder_type']) == ('BFGS', 2000, 'power_order')
    assert s['evaluator'] == 'pyace'
    assert s['active_set']['gamma_tolerance'] == 1.01


@pytest.mark.parametrize('protocol', ['fast', 'balanced', 'stringent'])
def test_protocols_validate(protocol):
    s = validate_settings(FitAceWorkChain.get_protocol_inputs(protocol)['pacemaker']['settings'])
    assert s['evaluator'] == 'pyace'


@pytest.mark.parametrize(
    ('override', 'message'),
    [
        ({'embedding': 'Morse'}, 'unknown embedding (npot)'),
        ({'kappa': 1.5}, 'kappa must be in [0, 1]'),
        ({'kappa': -0.1}, 'kappa must be in [0, 1]'),
        ({'test_fraction': 0.0}, 'strictly between 0 and 1'),
        ({'test_fraction': 1.0}, 'strictly between 0 and 1'),
        ({'fs_parameters': [1, 1]}, 'one pair per density'),
        ({'number_of_functions_per_element': 0}, 'positive integer'),
        ({'kapa': 0.1}, "unknown fit setting(s) ['kapa']"),
        ({'active_set': {'tolerance': 2}}, 'unknown active_set setting'),
        ({'reference_energy': 'zero'}, 'reference_energy must be `auto`'),
    ],
)
def test_bad_settings_name_problem_and_fix(override, message):
    with pytest.raises(FitSettingsError, match=None) as info:
        validate_settings(override)
    assert message in str(info.value)


def test_elements_mismatch():
    s = validate_settings({'elements': ['Na', 'V', 'P', 'O']})
    with pytest.raises(FitSettingsError, match=r"only in data: \['Fe'\], only in settings: \['V'\]"):
        settings.fit_elements(s, ['Fe', 'Na', 'O', 'P'])
    assert settings.fit_elements(validate_settings(), ['O', 'Na']) == ['Na', 'O']


def test_dataset_smaller_than_basis():
    s = validate_settings({'number_of_functions_per_element': 250})
    with pytest.raises(FitSettingsError, match='smaller than its number of basis functions') as info:
        settings.check_dataset_size(s, {'Na': 100, 'O': 300})
    assert 'lower number_of_functions_per_element to at most 200' in str(info.value)


def test_insufficient_environments_per_element():
    s = validate_settings({'number_of_functions_per_element': 100})
    with pytest.raises(FitSettingsError, match=r'too few atoms of Fe \(60\)') as info:
        settings.check_dataset_size(s, {'Fe': 60, 'Na': 500, 'O': 900})
    assert 'Insufficient atomic environments' in str(info.value)
    assert 'at least 110' in str(info.value)  # headroom for pace_activeset's outlier filter
    settings.check_dataset_size(validate_settings({'number_of_functions_per_element': 100,
                                                   'active_set': {'all_atoms': True}}), {'Fe': 100, 'O': 900})  # fmt: skip


def test_reference_energy_must_cover_elements():
    s = validate_settings({'reference_energy': {'Na': -0.07}})
    with pytest.raises(FitSettingsError, match=r"no value for \['O'\]"):
        settings.check_reference_energy(s, ['Na', 'O'])


def test_input_yaml_study(file_regression):
    s = validate_settings({'reference_energy': settings.NAFEPO4_REFERENCE_ENERGY})
    file_regression.check(input_yaml.render_input_yaml(s, ['P', 'O', 'Na', 'Fe']), extension='.yaml')


def test_input_yaml_fast_upfit(file_regression):
    s = validate_settings(FitAceWorkChain.get_protocol_inputs('fast')['pacemaker']['settings'])
    text = input_yaml.render_input_yaml(s, ['Fe', 'Na', 'O', 'P'], initial_potential='initial_potential.yaml')
    file_regression.check(text, extension='.yaml')


def test_initial_potential_without_core_repulsion(reference_potential_yaml, reference_frames, tmp_path):
    """An up-fit gets the initial potential as the bare ACE expansion its coefficients were fitted as: the ZBL core
    that `repulsion: auto` added after its fit is switched off, everything else is kept byte for byte."""
    import yaml

    from aiida_glassml.fitting.evaluate import predict

    text = reference_potential_yaml.read_text()
    bare = input_yaml.initial_potential_yaml(text, validate_settings())  # repulsion: auto
    assert bare == input_yaml.without_core_repulsion(text)
    assert input_yaml.initial_potential_yaml(text, validate_settings({'repulsion': None})) == text
    original, stripped = yaml.safe_load(text), yaml.safe_load(bare)
    # one- and two-species blocks carry the inner cutoff
    assert {b['inner_cutoff_type'] for b in original['species'] if 'r_in' in b} == {'zbl'}
    for block in (b for b in stripped['species'] if 'r_in' in b):
        assert (block['r_in'], block['delta_in'], block['inner_cutoff_type'], block['core-repulsion']) == \
            (0, 0, 'distance', [0, 0])  # fmt: skip
    for block in (*original['species'], *stripped['species']):
        for key in input_yaml.BARE_INNER_CUTOFF:
            block.pop(key, None)
    assert stripped == original  # coefficients, basis and metadata untouched
    # predictions: those of the bare expansion (inner cutoff off), not of the shipped potential with its core
    atoms = reference_frames.select([0]).to_atoms()[0]
    atoms.set_cell(atoms.cell * 0.5, scale_atoms=True)  # shortest contact 1.0 Å: inside the core (r_in ~0.8-1.2 Å)
    close = FrameSet.from_atoms([atoms])
    files = {'shipped': text, 'stripped': bare, 'r_in_0': re.sub(r'r_in: [0-9.eE+-]+', 'r_in: 0', text)}
    e = {}
    for name, content in files.items():
        (tmp_path / f'{name}.yaml').write_text(content)
        e[name] = predict(tmp_path / f'{name}.yaml', close)['energy']
    np.testing.assert_allclose(e['stripped'], e['r_in_0'], rtol=0, atol=1e-8)
    assert e['shipped'][0] - e['stripped'][0] > 1000  # eV: the shipped core repels these contacts


def test_input_yaml_upfit_modes():
    """`continue`: the initial potential is the basis (no ladder); `extend`: the ladder grows from it."""
    s = validate_settings({'reference_energy': {'Na': -1.0, 'O': -2.0, 'shift': 0.1}})
    ours = input_yaml.pacemaker_input(s, ['Na', 'O'], initial_potential='initial_potential.yaml')
    assert ours['potential'] == 'initial_potential.yaml'
    assert 'ladder_step' not in ours['fit']
    assert ours['data']['reference_energy'] == {'Na': -1.0, 'O': -2.0, 'shift': 0.1}
    extend = input_yaml.pacemaker_input({**s, 'upfit': 'extend'}, ['Na', 'O'], initial_potential='initial_potential.yaml')
    assert extend['potential']['initial_potential'] == 'initial_potential.yaml'
    assert extend['fit']['ladder_step'] == 5
    with pytest.raises(FitSettingsError, match='unknown upfit mode'):
        validate_settings({'upfit': 'restart'})


def test_study_input_matches_published_input(data_dir):
    """Our defaults render the published pacemaker input's potential, loss and optimiser sections."""
    import yaml

    published = yaml.safe_load((data_dir / 'pacemaker_input_nafepo4.yaml').read_text())
    ours = input_yaml.pacemaker_input(validate_settings({'reference_energy': settings.NAFEPO4_REFERENCE_ENERGY}),
                                      ['P', 'O', 'Na', 'Fe'])  # fmt: skip
    assert ours['potential']['embeddings'] == published['potential']['embeddings']
    assert ours['potential']['elements'] == published['potential']['elements']
    assert ours['potential']['bonds']['ALL'] == published['potential']['bonds']['ALL']
    assert ours['data']['reference_energy'] == published['data']['reference_energy']
    for key in ('maxiter', 'optimizer', 'ladder_step', 'ladder_type', 'early_stopping_patience', 'loss'):
        assert ours['fit'][key] == published['fit'][key], key
    functions = published['potential']['functions']
    assert ours['potential']['functions']['number_of_functions_per_element'] == 250
    assert ours['potential']['functions']['ALL']['nradmax_by_orders'] == functions['UNARY']['nradmax_by_orders']


def test_split_is_seeded_and_complete():
    train, test = split.split_indices(40, 0.25, seed=3)
    assert len(test) == 10 and len(train) == 30
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(40))
    again = split.split_indices(40, 0.25, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, split.split_indices(40, 0.25, seed=4)[1])
    assert len(split.split_indices(3, 0.01, seed=0)[1]) == 1  # at least one test frame
    with pytest.raises(FitSettingsError, match='strictly between 0 and 1'):
        split.split_indices(10, 1.5, seed=0)


def _two_frames() -> FrameSet:
    return FrameSet.from_frames([
        {'symbols': ['Na', 'O'], 'positions': [[0, 0, 0], [2, 0, 0]], 'cell': np.eye(3) * 10, 'energy': -5.0,
         'forces': [[0.1, 0, 0], [-0.1, 0, 0]]},
        {'symbols': ['O', 'O', 'O', 'Na'], 'positions': np.arange(12).reshape(4, 3), 'cell': np.eye(3) * 10,
         'energy': -12.0, 'forces': np.zeros((4, 3))},
    ])  # fmt: skip


def test_metrics_by_hand():
    frames = _two_frames()
    reference = {'Na': -1.0, 'O': -2.0}
    corrected = metrics.corrected_energies(frames, reference)
    assert corrected == pytest.approx([-2.0, -5.0])  # -5 - (-1 - 2), -12 - (-6 - 1)
    forces_pred = frames.forces + 0.01  # every component off by 10 meV/Å
    summary, errors = metrics.compute_metrics(frames, corrected + [0.02, -0.04], forces_pred, reference)
    assert errors['energy_error_per_atom'] == pytest.approx([10.0, -10.0])  # 20 meV / 2 atoms, -40 meV / 4 atoms
    assert summary['energy_mae'] == pytest.approx(10.0)
    assert summary['energy_rmse'] == pytest.approx(10.0)
    assert summary['force_mae'] == pytest.approx(10.0)
    assert summary['force_rmse'] == pytest.approx(10.0)
    with pytest.raises(metrics.MetricsError, match=r"also contains \['O'\]"):
        metrics.corrected_energies(frames, {'Na': -1.0})


def test_metrics_auto_reference_shift():
    """pacemaker's `reference_energy: auto` adds a per-atom shift: E_ref = E - sum e0 + shift * N."""
    frames = _two_frames()
    corrected = metrics.corrected_energies(frames, {'Na': -1.0, 'O': -2.0, 'shift': 0.5})
    assert corrected == pytest.approx([-2.0 + 1.0, -5.0 + 2.0])


def test_upfit_size_check_uses_the_initial_basis():
    """An up-fit that continues an initial potential fits that potential's basis (here 248 per element), not the
    settings' `number_of_functions_per_element`."""
    s = validate_settings({'number_of_functions_per_element': 10, 'active_set': {'all_atoms': True}})
    counts = {'Fe': 200, 'Na': 500, 'O': 900, 'P': 300}
    settings.check_dataset_size(s, counts)  # fine for 10 functions
    initial = {'Fe': 248, 'Na': 248, 'O': 248, 'P': 248}
    with pytest.raises(FitSettingsError, match=r'too few atoms of Fe \(200\)') as info:
        settings.check_dataset_size(s, counts, initial)
    assert '248 functions per element' in str(info.value)
    assert 'Insufficient atomic environments' in str(info.value)
    assert 'up-fit from a potential with fewer functions' in str(info.value)
