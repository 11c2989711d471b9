"""Quantum ESPRESSO DFT+U for Fe and V in QE 6.x syntax (``lda_plus_u``, ``lda_plus_u_kind = 0``, ``Hubbard_U(i)``).

A converged real DFT+U SCF of a few-atom Fe-O cell at Γ does not fit in a CI test here (a 2-atom FeO cell did not
converge in 80 iterations, an 8-atom one took 33 s without converging), so the test pins the ``aiida.in`` that
aiida-quantumespresso writes for LabelWorkChain's inputs (dry run) and runs the installed pw.x on it for one SCF
iteration: pw.x must read the input and report the U on every Fe species."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest
from aiida import orm

from aiida_glassml.labeling import LabelingInputError, qe, vasp
from aiida_glassml.labeling import level_of_theory as lot
from aiida_glassml.protocols import ProtocolMixin

PSEUDO_DIR = pathlib.Path('/usr/share/espresso/pseudo')
FEO_PSEUDOS = {'Fe': 'Fe.pbe-nd-rrkjus.UPF', 'O': 'O.pbe-rrkjus.UPF'}  # Debian's PBE ultrasoft UPFs (Fe: 8 e)


class _QeProtocol(ProtocolMixin):
    _protocol_file = 'label_qe'


def test_default_u_is_the_vasp_presets_u():
    u_in_presets = {e: u for preset in vasp.PRESETS.values() for e, u in (preset.get('hubbard_u') or {}).items()}
    assert u_in_presets == qe.DEFAULT_HUBBARD_U and set(u_in_presets) == {'Fe', 'V'}


def test_dft_plus_u_by_kind_in_qe6_syntax():
    settings = _QeProtocol.get_protocol_inputs('balanced')['qe']
    kinds = ['Na', 'Fe1', 'Fe2', 'V', 'P', 'O', 'O', 'O']
    symbols = ['Na', 'Fe', 'Fe', 'V', 'P', 'O', 'O', 'O']
    settings['initial_magnetization'] = {'Fe2': -4}
    system = qe.build_pw_parameters(symbols, settings, 'single_point', kind_names=kinds,
                                    valences={'Fe': 16.0, 'V': 13.0, 'Na': 9.0})['SYSTEM']  # fmt: skip
    assert (system['lda_plus_u'], system['lda_plus_u_kind']) == (True, 0)  # Dudarev, QE 6.x namelist keys
    fe, v = qe.DEFAULT_HUBBARD_U['Fe'], qe.DEFAULT_HUBBARD_U['V']
    assert system['hubbard_u'] == {'Fe1': fe, 'Fe2': fe, 'V': v}  # keyed by kind, as aiida-quantumespresso wants
    assert system['nspin'] == 2
    # μB over the valence charge: Fe 4/16, Fe2 antiparallel, V 2/13
    assert system['starting_magnetization'] == {'Fe1': 0.25, 'Fe2': -0.25, 'Na': 0.0, 'O': 0.0, 'P': 0.0,
                                                'V': pytest.approx(2 / 13, abs=1e-4)}  # fmt: skip
    # without valences: a clearly magnetic start
    system = qe.build_pw_parameters(symbols, settings, 'single_point', kind_names=kinds)['SYSTEM']
    assert system['starting_magnetization']['Fe2'] == -0.5 and system['starting_magnetization']['V'] == 0.5


def test_hubbard_u_overrides():
    settings = _QeProtocol.get_protocol_inputs('fast', {'qe': {'hubbard_u': {'Fe': 4.0, 'Mn': 3.9}}})['qe']
    system = qe.build_pw_parameters(['Fe', 'V', 'O', 'Mn'], settings, 'single_point')['SYSTEM']
    assert system['hubbard_u'] == {'Fe': 4.0, 'Mn': 3.9}  # a mapping replaces the defaults
    settings['hubbard_u'] = {}
    system = qe.build_pw_parameters(['Fe', 'O'], settings, 'single_point')['SYSTEM']
    assert 'lda_plus_u' not in system and 'hubbard_u' not in system
    settings = _QeProtocol.get_protocol_inputs('fast')['qe']
    assert 'lda_plus_u' not in qe.build_pw_parameters(['Si', 'O'], settings, 'single_point')['SYSTEM']
    with pytest.raises(LabelingInputError, match='U must be 0 or positive'):
        qe.build_pw_parameters(['Fe', 'O'], {**settings, 'hubbard_u': {'Fe': -1}}, 'single_point')


def test_level_of_theory_records_the_u():
    settings = _QeProtocol.get_protocol_inputs('balanced')
    level = lot.qe_level(settings, ['Fe', 'O', 'V'], 'fam', {}, [(50.0, 400.0)])
    assert level['hubbard_u'] == {'Fe': qe.DEFAULT_HUBBARD_U['Fe'], 'O': 0.0, 'V': qe.DEFAULT_HUBBARD_U['V']}
    plain = lot.qe_level(_QeProtocol.get_protocol_inputs('balanced', {'qe': {'hubbard_u': {}}}), ['Fe', 'O'], 'fam',
                         {}, [(50.0, 400.0)])  # fmt: skip
    assert lot.compare_levels(level, plain) == [f'hubbard_u[Fe]: {qe.DEFAULT_HUBBARD_U["Fe"]} vs 0.0']


@pytest.fixture(scope='module')
def feo_pseudo_family(aiida_profile, tmp_path_factory):
    from aiida.common.exceptions import NotExistent
    from aiida_pseudo.data.pseudo import UpfData
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    try:
        return orm.load_group('glassml-test/FeO-PBE-US')
    except NotExistent:
        pass
    folder = tmp_path_factory.mktemp('feo_upf')
    for element, name in FEO_PSEUDOS.items():
        assert (PSEUDO_DIR / name).exists(), f'{PSEUDO_DIR / name} missing: install quantum-espresso-data'
        shutil.copy(PSEUDO_DIR / name, folder / f'{element}.upf')
    return PseudoPotentialFamily.create_from_folder(folder, 'glassml-test/FeO-PBE-US', pseudo_type=UpfData)


def test_pw_input_written_by_aiida_quantumespresso_and_read_by_pw(
    aiida_localhost, feo_pseudo_family, tmp_path, file_regression
):  # fmt: skip
    from aiida.common.folders import Folder
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager
    from aiida.plugins import CalculationFactory
    from ase import Atoms

    from aiida_glassml.workflows.label import LabelWorkChain, _qe_child_inputs

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='pw-hubbard',
                             default_calc_job_plugin='quantumespresso.pw').store()  # fmt: skip
    # a rock-salt FeO layer: two Fe kinds (ASE tags 1, 2) with opposite moments (an antiferromagnetic start)
    atoms = Atoms('FeFeOO', scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0], [0, 0.5, 0]],
                  cell=[4.33, 4.33, 4.33], tags=[1, 2, 0, 0], pbc=True)  # fmt: skip
    structure = orm.StructureData(ase=atoms)
    assert structure.get_kind_names() == ['Fe1', 'Fe2', 'O']
    # U given explicitly, so that the file pins the syntax, not the preset's value
    overrides = {'qe': {'initial_magnetization': {'Fe1': 4, 'Fe2': -4}, 'hubbard_u': {'Fe': 5.3}, 'electron_maxstep': 1}}
    builder = LabelWorkChain.get_builder_from_protocol(
        code, {'feo': structure}, engine='qe', mode='single_point', protocol='fast',
        pseudo_family=feo_pseudo_family.label, overrides=overrides,
    )  # fmt: skip
    _, inputs = _qe_child_inputs('single_point', code, structure, builder.settings.get_dict(), feo_pseudo_family.label,
                                 {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}})  # fmt: skip
    pw = inputs['pw']
    calc_inputs = {**{k: pw[k] for k in ('code', 'structure', 'parameters', 'pseudos', 'settings', 'metadata')},
                   'kpoints': inputs['kpoints']}  # fmt: skip
    process = instantiate_process(get_manager().get_runner(), CalculationFactory('quantumespresso.pw'), **calc_inputs)
    process.prepare_for_submission(Folder(str(tmp_path)))
    text = (tmp_path / 'aiida.in').read_text()
    assert '  lda_plus_u = .true.\n' in text and '  lda_plus_u_kind = 0\n' in text
    assert '  hubbard_u(1) =   5.3000000000d+00\n' in text and '  hubbard_u(2) =   5.3000000000d+00\n' in text
    assert '  hubbard_u(3)' not in text  # species Fe1, Fe2, O
    # 4 μB over Fe's 8 valence electrons, the second Fe antiparallel
    assert '  starting_magnetization(1) =   5.0000000000d-01\n' in text
    assert '  starting_magnetization(2) =  -5.0000000000d-01\n' in text
    assert 'HUBBARD' not in text  # the QE 7.1+ card; pw.x 6.7 would stop on it
    file_regression.check(text, basename='qe_feo_hubbard_aiida', extension='.in')

    # the installed pw.x reads it and applies U to both Fe species (one SCF iteration: seconds)
    assert shutil.which('pw.x'), 'pw.x not installed (apt-get install quantum-espresso)'
    (tmp_path / 'pseudo').mkdir(exist_ok=True)
    for pseudo in calc_inputs['pseudos'].values():
        (tmp_path / 'pseudo' / pseudo.filename).write_bytes(pseudo.get_content(mode='rb'))
    (tmp_path / 'out').mkdir(exist_ok=True)
    result = subprocess.run(['pw.x', '-in', 'aiida.in'], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})  # fmt: skip
    lines = result.stdout.splitlines()
    header = [i for i, line in enumerate(lines) if 'Simplified LDA+U calculation (l_max = 2) with parameters (eV):' in line]
    assert header, result.stdout[-3000:]
    # the table under the header: species, L, U, ...
    table = [line.split()[:3] for line in lines[header[0] + 2 : header[0] + 5]]
    assert table == [['Fe1', '2', '5.3000'], ['Fe2', '2', '5.3000'], []], result.stdout[-3000:]
