"""Pure labelling code (no AiiDA): generated CP2K and pw.x inputs (regression), CP2K output parsing, helpers."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from aiida_glassml.labeling import LabelingInputError
from aiida_glassml.common import units
from aiida_glassml.labeling import cp2k, frames, qe
from aiida_glassml.protocols import ProtocolMixin

DATA = pathlib.Path(__file__).parent / 'data'
NAFEPO4 = ['Na'] * 4 + ['Fe'] * 4 + ['P'] * 4 + ['O'] * 16
NAPO3 = (['P'] + ['O'] * 3 + ['Na']) * 4


class _Cp2kProtocol(ProtocolMixin):
    _protocol_file = 'label_cp2k'


class _QeProtocol(ProtocolMixin):
    _protocol_file = 'label_qe'


def test_cp2k_balanced_nafepo4_input(file_regression):
    """The thesis settings: DZVP-MOLOPT(-SR) + GTH-PBE, UKS with Fe moments, 500 Ry, NVT 5000 K, 2 fs, every 20 steps."""
    from aiida_cp2k.utils import Cp2kInput

    settings = _Cp2kProtocol.get_protocol_inputs('balanced')
    parameters = cp2k.build_cp2k_parameters(NAFEPO4, settings['cp2k'], 'aimd', settings['aimd'])
    dft = parameters['FORCE_EVAL']['DFT']
    assert dft['UKS'] is True and dft['MGRID']['CUTOFF'] == 500
    assert dft['MULTIPLICITY'] == 4 * 4 + 1  # four Fe at 4 μB, ferromagnetic start
    kinds = {kind['_']: kind for kind in parameters['FORCE_EVAL']['SUBSYS']['KIND']}
    assert kinds['Na']['BASIS_SET'] == 'DZVP-MOLOPT-SR-GTH-q9' and kinds['Fe']['POTENTIAL'] == 'GTH-PBE-q16'
    assert kinds['O']['BASIS_SET'] == 'DZVP-MOLOPT-GTH-q6'
    md = parameters['MOTION']['MD']
    assert (md['TEMPERATURE'], md['TIMESTEP'], md['STEPS']) == (5000.0, 2.0, 100)
    assert parameters['MOTION']['PRINT']['TRAJECTORY']['EACH']['MD'] == 20
    file_regression.check(Cp2kInput(parameters).render(), basename='cp2k_balanced_nafepo4', extension='.inp')


def test_cp2k_pbe0_refinement():
    settings = _Cp2kProtocol.get_protocol_inputs('balanced', {'cp2k': {'hybrid': {'fraction': 0.25}}})
    xc = cp2k.build_cp2k_parameters(NAPO3, settings['cp2k'], 'single_point')['FORCE_EVAL']['DFT']['XC']
    assert xc['HF']['FRACTION'] == 0.25
    assert xc['XC_FUNCTIONAL']['PBE']['SCALE_X'] == pytest.approx(0.75)


def test_cp2k_uks_auto_is_restricted_for_closed_shell():
    settings = _Cp2kProtocol.get_protocol_inputs('fast')
    dft = cp2k.build_cp2k_parameters(NAPO3, settings['cp2k'], 'single_point')['FORCE_EVAL']['DFT']
    assert 'UKS' not in dft and dft['MULTIPLICITY'] == 1
    dft = cp2k.build_cp2k_parameters(NAFEPO4, settings['cp2k'], 'single_point')['FORCE_EVAL']['DFT']
    assert dft['UKS'] is True


def test_with_robust_scf():
    settings = _Cp2kProtocol.get_protocol_inputs('balanced')
    parameters = cp2k.build_cp2k_parameters(NAPO3, settings['cp2k'], 'single_point')
    robust = cp2k.with_robust_scf(parameters)
    assert 'OT' in parameters['FORCE_EVAL']['DFT']['SCF']  # input not modified
    scf = robust['FORCE_EVAL']['DFT']['SCF']
    assert 'OT' not in scf and scf['SMEAR']['ELECTRONIC_TEMPERATURE'] == 1000.0 and scf['MAX_SCF'] >= 100


def test_parse_stopped_cp2k_md():
    """A run cut off during step 3: frames 0 and 2 are complete, the half-written one is dropped."""
    files = {p.name: p.read_text() for p in (DATA / 'cp2k_md_stopped').iterdir()}
    parsed = cp2k.frames_from_cp2k(files, 'aimd')
    assert [f['metadata']['step'] for f in parsed] == [0, 2]
    first = parsed[0]
    assert first['symbols'][:5] == ['P', 'O', 'O', 'O', 'Na'] and first['positions'].shape == (20, 3)
    assert first['energy'] == pytest.approx(-405.6701101306 * units.HARTREE_TO_EV)
    # CP2K prints forces in Hartree/Bohr
    assert first['forces'][0, 0] == pytest.approx(0.0780725 * units.HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM, rel=1e-4)
    # CP2K's stress sign is opposite to ASE's: the compressed cell has positive CP2K pressure.
    assert np.trace(first['stress']) < 0
    np.testing.assert_allclose(first['cell'], np.eye(3) * 6.6)


def test_qe_md_parameters(data_regression):
    settings = _QeProtocol.get_protocol_inputs('balanced')
    parameters = qe.build_pw_parameters(['Si', 'O', 'O'] * 2, settings['qe'], 'aimd', settings['aimd'])
    assert parameters['CONTROL']['dt'] == pytest.approx(2.0 / qe.RY_TIME_FS)
    assert parameters['CONTROL']['nstep'] == 101 and parameters['IONS']['tempw'] == 5000.0
    assert parameters['SYSTEM']['nosym'] is True and 'nspin' not in parameters['SYSTEM']
    magnetic = qe.build_pw_parameters(NAFEPO4, settings['qe'], 'single_point')
    assert magnetic['SYSTEM']['nspin'] == 2 and magnetic['SYSTEM']['starting_magnetization']['Fe'] > 0
    data_regression.check(parameters, basename='qe_balanced_sio2_md')


def test_qe_frames_sampling():
    arrays = {
        'positions': np.zeros((5, 2, 3)), 'cells': np.tile(np.eye(3), (5, 1, 1)), 'energy': np.arange(5.0),
        'forces': np.ones((5, 2, 3)), 'stress': np.tile(np.eye(3), (5, 1, 1)),
    }  # fmt: skip
    sampled = qe.frames_from_pw_arrays(arrays, ['Si', 'O'], {}, 'aimd', sample_every=2)
    assert [f['energy'] for f in sampled] == [0.0, 2.0, 4.0]
    assert sampled[0]['stress'][0, 0] == pytest.approx(-units.GPA_TO_EV_PER_A3)  # QE's sign flipped to ASE's


def test_helpers():
    assert frames.composition_formula(NAFEPO4) == 'NaFePO4'
    assert frames.composition_formula(NAPO3) == 'NaPO3'
    assert frames.sample_steps(100, 20) == [0, 20, 40, 60, 80, 100]
    run1 = [{'metadata': {'step': s}} for s in (0, 2, 4)]
    run2 = [{'metadata': {'step': s}} for s in (4, 6)]
    assert [f['metadata']['step'] for f in frames.unique_steps([run1, run2])] == [0, 2, 4, 6]


def test_unknown_mode():
    with pytest.raises(LabelingInputError, match='unknown labelling mode `relax`'):
        cp2k.build_cp2k_parameters(NAPO3, {'cutoff': 100}, 'relax')


def test_parse_uks_single_point_magnetic_moments():
    """A recorded CP2K UKS single point (Na4P4O12 as a triplet): Mulliken spin moments become frame magmoms."""
    stdout = (DATA / 'cp2k_uks_single_point.out').read_text()
    structure = {'symbols': NAPO3, 'positions': np.zeros((20, 3)), 'cell': np.eye(3) * 6.6}
    (frame,) = cp2k.frames_from_cp2k({'aiida.out': stdout}, 'single_point', structure)
    assert frame['magmoms'].shape == (20,)
    assert frame['magmoms'].sum() == pytest.approx(1.957087, abs=1e-5)  # two unpaired electrons, minus spin contamination
    assert frame['magmoms'][1] == pytest.approx(0.177371)
    assert frame['energy'] == pytest.approx(-405.673112907473183 * units.HARTREE_TO_EV)
    assert frame['forces'].shape == (20, 3) and frame['stress'].shape == (3, 3)
    # The restricted stopped-MD output has Mulliken-free, spin-free frames.
    files = {p.name: p.read_text() for p in (DATA / 'cp2k_md_stopped').iterdir()}
    assert all(f['magmoms'] is None for f in cp2k.frames_from_cp2k(files, 'aimd'))


def test_dft_units_match_ase_codata_2018():
    from ase.units import create_units

    codata = create_units('2018')
    assert units.HARTREE_TO_EV == pytest.approx(codata['Hartree'], rel=1e-10)
    assert units.BOHR_TO_ANGSTROM == pytest.approx(codata['Bohr'], rel=1e-10)
    assert units.GPA_TO_EV_PER_A3 == pytest.approx(codata['GPa'], rel=1e-10)
    assert units.KBAR_TO_EV_PER_A3 == pytest.approx(0.1 * codata['GPa'], rel=1e-10)


def test_continue_restarted_steps():
    """Per-run indices become steps over the chain; sampling follows the chain, not each run."""

    def run(steps, index_from=0):
        return [{'positions': np.full((1, 3), float(s)), 'metadata': {'step': i}}
                for i, s in enumerate(steps, start=index_from)]  # fmt: skip

    # restart from the next positions (step 3), then a restart that evaluates its start (step 5) again
    chain = [run([0, 1, 2]), [], run([3, 4, 5]), run([5, 6, 7])]
    kept = frames.continue_restarted_steps(chain, sample_every=2)
    assert [f['metadata']['step'] for f in kept] == [0, 2, 4, 6]
    assert [f['positions'][0, 0] for f in kept] == [0.0, 2.0, 4.0, 6.0]
    assert frames.continue_restarted_steps([], 2) == []


def test_qe_cutoffs_from_family():
    """The family's recommended cutoffs times the multiplier, never below the protocol's minimum."""
    settings = _QeProtocol.get_protocol_inputs('balanced')['qe']  # at least 50/400 Ry, multiplier 1
    assert qe.select_cutoffs(settings, None) == (50.0, 400.0)  # a family without cutoffs
    assert qe.select_cutoffs(settings, (90.0, 1080.0)) == (90.0, 1080.0)  # e.g. SSSP with Fe
    assert qe.select_cutoffs(settings, (30.0, 240.0)) == (50.0, 400.0)
    stringent = _QeProtocol.get_protocol_inputs('stringent')['qe']
    assert qe.select_cutoffs(stringent, (90.0, 1080.0)) == (112.5, 1350.0)
    parameters = qe.build_pw_parameters(['Si', 'O', 'O'], settings, 'single_point', recommended_cutoffs=(60.0, 480.0))
    assert (parameters['SYSTEM']['ecutwfc'], parameters['SYSTEM']['ecutrho']) == (60.0, 480.0)
    with pytest.raises(LabelingInputError, match='cutoff_multiplier` must be positive'):
        qe.select_cutoffs({**settings, 'cutoff_multiplier': 0}, (60.0, 480.0))
