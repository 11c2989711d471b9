"""CP2K presets named after their study (nafepo4_aimd, nvp_thesis), PBE0-TC-LRC and the truncation-radius check.
The rendered inputs go through the installed CP2K's own input parser (``cp2k --check``, about a second)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from aiida import orm

from aiida_glassml.labeling import LabelingInputError, cp2k
from aiida_glassml.protocols import ProtocolMixin

NAPO3 = (['P'] + ['O'] * 3 + ['Na']) * 4
NVP = ['Na', 'V', 'P', 'O', 'O', 'O', 'O', 'O']


class _Cp2kProtocol(ProtocolMixin):
    _protocol_file = 'label_cp2k'


def _settings(protocol, overrides=None):
    return _Cp2kProtocol.get_protocol_inputs(protocol, overrides)


def test_nafepo4_aimd_is_the_default_and_the_study_settings():
    balanced, preset = _settings('balanced'), _settings('nafepo4_aimd')
    assert _Cp2kProtocol.get_default_protocol() == 'balanced'
    assert balanced == preset  # `balanced` stays the engine-neutral name of the same settings
    md = cp2k.build_cp2k_parameters(NAPO3, preset['cp2k'], 'aimd', preset['aimd'])['MOTION']['MD']
    assert (md['ENSEMBLE'], md['TEMPERATURE'], md['TIMESTEP'], md['STEPS']) == ('NVT', 5000.0, 2.0, 100)
    assert md['THERMOSTAT'] == {'TYPE': 'CSVR', 'CSVR': {'TIMECON': 50.0}}


def test_nvp_thesis_is_nose_hoover_at_1_fs():
    settings = _settings('nvp_thesis')
    parameters = cp2k.build_cp2k_parameters(NVP, settings['cp2k'], 'aimd', settings['aimd'])
    md = parameters['MOTION']['MD']
    assert (md['TEMPERATURE'], md['TIMESTEP'], md['STEPS']) == (300.0, 1.0, 2000)
    assert md['THERMOSTAT'] == {'TYPE': 'NOSE', 'NOSE': {'LENGTH': 3, 'TIMECON': 100.0}}
    assert parameters['MOTION']['PRINT']['TRAJECTORY']['EACH']['MD'] == 100  # a frame every 100 fs
    dft = parameters['FORCE_EVAL']['DFT']  # the thesis's electronic settings, as every full protocol
    assert (dft['UKS'], dft['MGRID']['CUTOFF'], dft['XC']) == (True, 500, {'XC_FUNCTIONAL': {'_': 'PBE'}})
    with pytest.raises(LabelingInputError, match=r'unknown CP2K thermostat `nose`; set `aimd.thermostat` to one of '
                                                 r'csvr, nose_hoover'):  # fmt: skip
        cp2k.build_cp2k_parameters(NVP, settings['cp2k'], 'aimd', {**settings['aimd'], 'thermostat': 'nose'})


def test_pbe0_has_the_long_range_correction_at_the_truncation_radius():
    settings = _settings('nvp_thesis', {'cp2k': {'hybrid': {'fraction': 0.25, 'cutoff_radius': 3.5}}})
    xc = cp2k.build_cp2k_parameters(NVP, settings['cp2k'], 'single_point')['FORCE_EVAL']['DFT']['XC']
    functional = xc['XC_FUNCTIONAL']
    # CP2K's PBE0-TC-LRC: 0.75 PBE exchange + 0.25 truncated HF + 0.25 PBE exchange hole beyond the same radius
    assert functional['PBE'] == {'SCALE_X': 0.75, 'SCALE_C': 1.0}
    assert functional['PBE_HOLE_T_C_LR'] == {'CUTOFF_RADIUS': 3.5, 'SCALE_X': 0.25}
    assert xc['HF']['FRACTION'] == 0.25
    assert xc['HF']['INTERACTION_POTENTIAL']['POTENTIAL_TYPE'] == 'TRUNCATED'
    assert xc['HF']['INTERACTION_POTENTIAL']['CUTOFF_RADIUS'] == 3.5
    with pytest.raises(LabelingInputError, match='set `cp2k.xc: PBE`'):
        cp2k.xc_section('BLYP', {'fraction': 0.25})


@pytest.mark.parametrize(('cell', 'half'), [
    (np.eye(3) * 12.8, 6.4),                                     # a 16 Å packing (112 atoms NaFePO4) strained to 0.8
    ([[10.0, 0, 0], [6.0, 8.0, 0], [0, 0, 20.0]], 4.0),          # sheared: |b| = 10 Å, but the width along y is 8 Å
])  # fmt: skip
def test_truncation_radius_must_be_below_half_the_shortest_width(cell, half):
    cp2k.check_truncation_radius({'cutoff_radius': half - 0.01}, {'ok': cell})
    cp2k.check_truncation_radius(None, {'no hybrid': cell})
    with pytest.raises(LabelingInputError) as info:
        cp2k.check_truncation_radius({'cutoff_radius': half}, {'glass_0.8': cell})
    message = str(info.value)
    assert '\n' not in message
    assert message == (f'PBE0 truncation radius {half:g} Å is not below half the shortest width of cell `glass_0.8` '
                       f'({half:.2f} Å); set `cp2k.hybrid.cutoff_radius` below {half:.2f} Å or use a larger cell.')


def test_truncation_radius_checked_before_anything_is_stored(aiida_localhost, node_count):
    from ase import Atoms

    from aiida_glassml.workflows.label import LabelWorkChain

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='cp2k-presets',
                             default_calc_job_plugin='cp2k').store()  # fmt: skip
    small = orm.StructureData(ase=Atoms(NVP, scaled_positions=np.linspace(0.05, 0.95, 24).reshape(8, 3),
                                        cell=[7.5, 7.5, 7.5], pbc=True))  # fmt: skip
    before = node_count()
    overrides = {'cp2k': {'hybrid': {'fraction': 0.25, 'cutoff_radius': 4.0}}}
    with pytest.raises(LabelingInputError, match=r'cell `structure 0` \(3.75 Å\); set `cp2k.hybrid.cutoff_radius`'):
        LabelWorkChain.get_builder_from_protocol(code, [small], protocol='nvp_thesis', overrides=overrides)
    assert node_count() == before
    builder = LabelWorkChain.get_builder_from_protocol(
        code, [small], protocol='nvp_thesis', overrides={'cp2k': {'hybrid': {'cutoff_radius': 3.5}}}
    )
    assert builder.settings['aimd']['thermostat'] == 'nose_hoover'


def test_cp2k_parses_the_rendered_presets(tmp_path):
    """The installed CP2K's parser accepts the NOSE thermostat and the PBE_HOLE_T_C_LR section as rendered."""
    from aiida_cp2k.utils import Cp2kInput

    assert shutil.which('cp2k'), 'cp2k not installed (apt-get install cp2k)'
    settings = _settings('nvp_thesis', {'cp2k': {'hybrid': {'fraction': 0.25, 'cutoff_radius': 3.5}}})
    parameters = cp2k.build_cp2k_parameters(NVP, settings['cp2k'], 'aimd', settings['aimd'])
    # what aiida-cp2k adds from the StructureData
    parameters['FORCE_EVAL']['SUBSYS']['CELL'] = {'A': '8 0 0', 'B': '0 8 0', 'C': '0 0 8'}
    parameters['FORCE_EVAL']['SUBSYS']['TOPOLOGY'] = {'COORD_FILE_NAME': 'aiida.coords.xyz', 'COORD_FILE_FORMAT': 'XYZ'}
    (tmp_path / 'aiida.inp').write_text(Cp2kInput(parameters).render())
    result = subprocess.run(['cp2k', '--check', 'aiida.inp'], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert 'SUCCESS, the input could be parsed correctly' in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_recipes_name_the_presets(tmp_path):
    import pathlib

    from aiida_glassml.common.recipe import RecipeError, read_recipe

    path = pathlib.Path(__file__).parents[2] / 'workflows' / 'nvp.yaml'
    assert read_recipe(path).data['hybrid'] == {'protocol': 'nvp_thesis'}
    broken = tmp_path / 'nvp.yaml'
    broken.write_text(path.read_text().replace('protocol: nvp_thesis', 'protocol: thesis'))
    with pytest.raises(RecipeError, match="'thesis' is not one of fast, balanced, nafepo4_aimd, nvp_thesis, stringent"):
        read_recipe(broken)
