"""Readers: LAMMPS data (atomic, charge, 38-type BMP), LAMMPS dumps written by LAMMPS itself, extxyz, POSCAR."""

from __future__ import annotations

import os
import subprocess
import sys
import pathlib

import numpy as np
import pytest
from ase import Atoms

from aiida_glassml.analysis import (
    TrajectoryMismatchError,
    UnknownAtomTypeError,
    iter_trajectory,
    read_lammps_data,
    read_structure,
)


@pytest.mark.parametrize('name', ['ACE_300K_1', 'BMP_300K_1', 'Teter_300K_1'])
def test_reference_glasses_map_types_by_masses(reference_glass_paths, name):
    atoms = read_structure(reference_glass_paths[name])
    assert atoms.get_chemical_formula() == 'Fe429Na429O1716P429'
    assert atoms.pbc.all() and atoms.get_volume() == pytest.approx(34.3**3, rel=0.05)
    assert atoms.arrays['image'].shape == (3003, 3)
    assert np.all(np.diff(atoms.arrays['id']) > 0)
    if name == 'Teter_300K_1':
        charges = dict(zip(atoms.get_chemical_symbols(), atoms.get_initial_charges()))
        assert charges == {'Fe': 1.2, 'Na': 0.6, 'O': -1.2, 'P': 3.0}


def test_unknown_types_without_masses_are_rejected(reference_glass_paths, tmp_path):
    text = reference_glass_paths['ACE_300K_1'].read_text()
    head, rest = text.split('\nMasses\n', 1)
    no_masses = head + '\n' + rest[rest.index('Atoms'):]
    path = tmp_path / 'no_masses.data'
    path.write_text(no_masses)
    with pytest.raises(UnknownAtomTypeError, match=r'no Masses.*pass `type_to_element`'):
        read_lammps_data(path)
    atoms = read_lammps_data(path, type_to_element={1: 'Fe', 2: 'Na', 3: 'O', 4: 'P'})
    assert atoms.get_chemical_formula() == 'Fe429Na429O1716P429'
    with pytest.raises(UnknownAtomTypeError, match=r'atom types \[4\] with no element'):
        read_lammps_data(path, type_to_element={1: 'Fe', 2: 'Na', 3: 'O'})


@pytest.fixture(scope='module')
def lammps_dump(reference_glass_paths, tmp_path_factory) -> pathlib.Path:
    """Three frames of the Teter glass written by LAMMPS (pair_style zero, so the run takes a second)."""
    folder = tmp_path_factory.mktemp('dump')
    (folder / 'in.dump').write_text(
        'units metal\natom_style charge\n'
        f'read_data {reference_glass_paths["Teter_300K_1"]}\n'
        'pair_style zero 3.0\npair_coeff * *\ntimestep 0.001\n'
        'dump d all custom 2 traj.dump id type x y z ix iy iz\ndump_modify d sort id\n'
        'fix f all nve\nrun 4\n'
    )
    lmp = pathlib.Path(sys.executable).parent / 'lmp'
    if not lmp.exists():
        pytest.skip('LAMMPS (lmp) is not installed in the venv')
    env = {**os.environ, 'LD_LIBRARY_PATH': str(lmp.parent.parent / 'lib'), 'OMP_NUM_THREADS': '1'}
    subprocess.run([str(lmp), '-in', 'in.dump', '-log', 'none'], cwd=folder, env=env, check=True, capture_output=True)
    return folder / 'traj.dump'


def test_lammps_dump_streams_frames_with_image_flags(lammps_dump, reference_glass_paths):
    with pytest.raises(UnknownAtomTypeError, match='data_file'):
        next(iter_trajectory(lammps_dump))
    data = read_structure(reference_glass_paths['Teter_300K_1'])
    frames = list(iter_trajectory(lammps_dump, data_file=reference_glass_paths['Teter_300K_1']))
    assert [f.info['timestep'] for f in frames] == [0, 2, 4]
    first = frames[0]
    assert first.get_chemical_symbols() == data.get_chemical_symbols()
    assert np.array_equal(first.arrays['image'], data.arrays['image'])
    assert first.positions == pytest.approx(data.positions, abs=1e-3)  # dump writes 6 significant digits
    assert np.allclose(first.cell, data.cell)
    last = read_structure(lammps_dump, type_to_element={1: 'Fe', 2: 'Na', 3: 'O', 4: 'P'})
    assert last.info['timestep'] == 4


def test_extxyz_poscar_and_trajectory_checks(tmp_path):
    import ase.io

    atoms = Atoms(['Na', 'P', 'O'], positions=[[0, 0, 0], [2, 0, 0], [3.5, 0, 0]], cell=[8.0] * 3, pbc=True)
    ase.io.write(tmp_path / 'a.xyz', atoms, format='extxyz')
    ase.io.write(tmp_path / 'POSCAR', atoms, format='vasp')
    for name in ('a.xyz', 'POSCAR'):
        read = read_structure(tmp_path / name)
        assert read.get_chemical_symbols() == ['Na', 'P', 'O']
        assert read.positions == pytest.approx(atoms.positions)
    ase.io.write(tmp_path / 'traj.xyz', [atoms, atoms, atoms[:2]], format='extxyz')
    with pytest.raises(TrajectoryMismatchError, match='frame 2 has 2 atoms'):
        list(iter_trajectory(tmp_path / 'traj.xyz'))
    swapped = atoms[[1, 0, 2]]
    ase.io.write(tmp_path / 'swapped.xyz', [atoms, swapped], format='extxyz')
    with pytest.raises(TrajectoryMismatchError, match='different order'):
        list(iter_trajectory(tmp_path / 'swapped.xyz'))
