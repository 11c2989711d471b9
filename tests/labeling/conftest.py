"""Fixtures of the labelling tests: small closed-shell cells (NaPO3, SiO2) and the DFT codes."""

from __future__ import annotations

import numpy as np
import pytest


def napo3_atoms(a: float = 6.6):
    """Na4P4O12 (20 atoms): PO3 groups on fcc sites, Na on the octahedral ones; no two atoms closer than 1.5 Å."""
    from ase import Atoms

    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]) * a
    tetrahedron = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    symbols, positions = [], []
    for index, site in enumerate(fcc):
        symbols.append('P')
        positions.append(site)
        for corner in range(4):
            if corner != index:
                symbols.append('O')
                positions.append(site + 1.55 * tetrahedron[corner])
        symbols.append('Na')
        positions.append(site + [a / 2, 0, 0])
    atoms = Atoms(symbols, positions=positions, cell=[a, a, a], pbc=True)
    atoms.wrap()
    return atoms


def sio2_atoms(a: float = 7.16):
    """Ideal β-cristobalite SiO2, primitive cell of 6 atoms (Si-O 1.55 Å): a tiny cell for Quantum ESPRESSO."""
    from ase import Atoms

    cell = a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    silicon = [np.zeros(3), a / 4 * np.ones(3)]
    bonds = np.array([[-1, -1, -1], [-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    oxygen = [silicon[1] + a / 8 * bond for bond in bonds]
    atoms = Atoms(['Si', 'Si'] + ['O'] * 4, positions=silicon + oxygen, cell=cell, pbc=True)
    atoms.wrap()
    return atoms


@pytest.fixture(scope='module')
def napo3_structure(aiida_profile):
    from aiida.orm import StructureData

    return StructureData(ase=napo3_atoms())


@pytest.fixture(scope='module')
def napo3_rattled(aiida_profile):
    """Two displaced copies of the NaPO3 cell, as from an active-learning selection."""
    from aiida.orm import StructureData

    structures = {}
    for seed in (1, 2):
        atoms = napo3_atoms()
        atoms.rattle(0.05, seed=seed)
        structures[f'rattled_{seed}'] = StructureData(ase=atoms)
    return structures


def local_code(executable: str, plugin: str, workdir, prepend_text: str = 'export OMP_NUM_THREADS=1'):
    """A code on a local computer of these tests; usable from module-scoped fixtures (unlike ``installed_code``)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_glassml.tools.setup import find_executable

    path = find_executable(executable)
    if path is None:
        pytest.skip(f'`{executable}` is not installed on this machine')
    try:
        computer = orm.load_computer('labeling-localhost')
    except NotExistent:
        computer = orm.Computer(
            label='labeling-localhost', hostname='localhost', transport_type='core.local',
            scheduler_type='core.direct', workdir=str(workdir),
        ).store()  # fmt: skip
        computer.configure(safe_interval=0.0)
        computer.set_minimum_job_poll_interval(0.0)
    label = executable.replace('.', '_')
    try:
        return orm.load_code(f'{label}@labeling-localhost')
    except NotExistent:
        code = orm.InstalledCode(
            computer=computer, filepath_executable=path, label=label, default_calc_job_plugin=plugin,
            prepend_text=prepend_text,
        )  # fmt: skip
        return code.store()


@pytest.fixture(scope='module')
def sio2_structure(aiida_profile):
    from aiida.orm import StructureData

    return StructureData(ase=sio2_atoms())


QE_PSEUDOS = {'Si': 'Si.pbe-nl-rrkjus_psl.1.0.0.UPF', 'O': 'O.pbe-rrkjus.UPF'}  # Debian's PBE ultrasoft UPFs
QE_PSEUDO_DIR = '/usr/share/espresso/pseudo'
QE_TEST_CUTOFFS = {'cutoff_wfc': 22.0, 'cutoff_rho': 176.0}  # Ry; above the fast protocol's minimum 20/160


@pytest.fixture(scope='module')
def qe_pseudo_family(aiida_profile, tmp_path_factory):
    """The Si and O PBE ultrasoft UPFs of Debian's quantum-espresso-data, installed as an aiida-pseudo family with
    recommended cutoffs (CI-sized ones, as SSSP's would be read) so that the labelling takes them from the family."""
    import pathlib
    import shutil

    from aiida.common.exceptions import NotExistent
    from aiida.orm import load_group
    from aiida_pseudo.data.pseudo import UpfData
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

    try:
        return load_group('glassml-test/SiO-PBE-US')
    except NotExistent:
        pass
    folder = tmp_path_factory.mktemp('upf')
    for element, name in QE_PSEUDOS.items():
        source = pathlib.Path(QE_PSEUDO_DIR) / name
        if not source.exists():
            pytest.skip(f'{source} missing: install quantum-espresso-data')
        shutil.copy(source, folder / f'{element}.upf')
    family = CutoffsPseudoPotentialFamily.create_from_folder(folder, 'glassml-test/SiO-PBE-US', pseudo_type=UpfData)
    family.set_cutoffs({element: QE_TEST_CUTOFFS for element in QE_PSEUDOS}, 'standard', unit='Ry')
    return family


@pytest.fixture(scope='module')
def pw_code(aiida_profile, tmp_path_factory):
    return local_code('pw.x', 'quantumespresso.pw', tmp_path_factory.mktemp('labeling_work'))


@pytest.fixture(scope='module')
def cp2k_code(aiida_profile, tmp_path_factory):
    return local_code('cp2k', 'cp2k', tmp_path_factory.mktemp('labeling_work'))


@pytest.fixture(scope='module')
def mock_vasp_code(aiida_profile, tmp_path_factory):
    """aiida-vasp's `mock-vasp` reading the registry in data/vasp_mock (recorded outputs matched by input hash)."""
    import pathlib

    registry = pathlib.Path(__file__).parent / 'data' / 'vasp_mock' / 'registry'
    return local_code(
        'mock-vasp', 'vasp.vasp', tmp_path_factory.mktemp('labeling_work'), f'export MOCK_VASP_REG_BASE={registry}'
    )
