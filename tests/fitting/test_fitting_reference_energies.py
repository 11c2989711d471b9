"""Reference energies of the fit presets: `auto` by default, the NaFePO4 study's own values in `nafepo4`, anchored to
the published pacemaker input and potential rather than to our constants."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from aiida_glassml.fitting import input_yaml, settings
from aiida_glassml.fitting.evaluate import reference_energy_of
from aiida_glassml.workflows.fit_ace import FitAceWorkChain

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _settings(protocol: str) -> dict:
    return FitAceWorkChain.get_protocol_inputs(protocol)['pacemaker']['settings']


def test_nafepo4_preset_uses_the_published_reference_energies(data_dir, reference_potential_yaml):
    published_input = yaml.safe_load((data_dir / 'pacemaker_input_nafepo4.yaml').read_text())
    published = published_input['data']['reference_energy']
    assert _settings('nafepo4')['reference_energy'] == published
    assert reference_energy_of(reference_potential_yaml) == pytest.approx(published, abs=0, rel=1e-12)
    assert settings.NAFEPO4_REFERENCE_ENERGY == published
    rendered = input_yaml.pacemaker_input(settings.validate_settings(_settings('nafepo4')), ['P', 'O', 'Na', 'Fe'])
    assert rendered['data']['reference_energy'] == published


def test_nafepo4_preset_is_balanced_with_fixed_reference_energies():
    nafepo4, balanced = _settings('nafepo4'), _settings('balanced')
    assert {k: v for k, v in nafepo4.items() if k != 'reference_energy'} == {
        k: v for k, v in balanced.items() if k != 'reference_energy'
    }
    for protocol in ('fast', 'balanced', 'stringent'):  # new systems: pacemaker fits e0 to the data
        assert _settings(protocol)['reference_energy'] == 'auto'


def test_nafepo4_preset_refuses_other_elements():
    with pytest.raises(settings.FitSettingsError, match=r"reference_energy has no value for \['V'\]"):
        settings.check_reference_energy(settings.validate_settings(_settings('nafepo4')), ['Na', 'V', 'P', 'O'])


def test_nafepo4_recipe_fits_vasp_labels_with_the_preset():
    recipe = yaml.safe_load((ROOT / 'workflows' / 'nafepo4.yaml').read_text())
    assert recipe['active_learning']['overrides']['fit_protocol'] == 'nafepo4'
    assert recipe['labels']['engine'] == 'vasp' and recipe['labels']['overrides']['vasp']['preset'] == 'nafepo4'


@pytest.mark.parametrize(('level', 'refused'), [
    ({'engine': 'cp2k'}, True),
    ({'engine': 'qe'}, True),
    ({'engine': 'vasp', 'hubbard_u': {'Fe': 5.3}, 'spin': 'collinear (ISPIN 2)'}, True),  # nafepo4_spin
    ({'engine': 'vasp', 'hubbard_u': {'Fe': 4.0}, 'spin': 'none (ISPIN 1)'}, True),
    ({'engine': 'vasp', 'hubbard_u': {'Fe': 5.3}, 'spin': 'none (ISPIN 1)'}, False),  # the study's labels
    ({'engine': 'potential', 'kind': 'ace'}, False),  # teacher labels carry the teacher's zero
    (None, False),  # imported frames of unknown level
])  # fmt: skip
def test_nafepo4_reference_energies_only_with_the_study_level(level, refused):
    nafepo4 = settings.validate_settings(_settings('nafepo4'))
    if refused:
        with pytest.raises(settings.FitSettingsError, match=r"reference_energy is the NaFePO4 study's .* use protocol "
                                                            r'balanced'):  # fmt: skip
            settings.check_reference_level(nafepo4, level)
    else:
        settings.check_reference_level(nafepo4, level)
    settings.check_reference_level(settings.validate_settings(_settings('balanced')), level)  # `auto`: any level
