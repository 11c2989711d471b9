"""``BaderCalculation`` on the venv python: a real CP2K cube (SinglefileData), the same density as a VASP CHGCAR in a
FolderData (written with ASE from the CP2K density: the VASP mock cannot make one), and bad inputs refused before
anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.analysis import bader
from aiida_glassml.calculations.bader import BaderCalculation

from .conftest import CP2K_VALENCES, NAPO3_CUBE, napo3_atoms


@pytest.fixture(scope='module')
def napo3_structure(aiida_profile):
    return orm.StructureData(ase=napo3_atoms())


@pytest.fixture(scope='module')
def cube_run(python_code, napo3_structure):
    density = orm.SinglefileData(NAPO3_CUBE)
    _, node = run_get_node(BaderCalculation, code=python_code, density=density, structure=napo3_structure,
                           valences=orm.Dict(CP2K_VALENCES))  # fmt: skip
    return node


def test_cube_gives_charges_per_atom(cube_run, napo3_structure):
    assert cube_run.is_finished_ok, cube_run.exit_message
    charges = cube_run.outputs.charges.get_array('charges')
    summary = cube_run.outputs.summary.get_dict()
    assert charges.shape == (20,)
    assert summary['n_electrons_bader'] == pytest.approx(128, rel=0.01)
    symbols = np.array(napo3_structure.get_ase().get_chemical_symbols())
    assert (charges[symbols == 'Na'] > 0).all() and (charges[symbols == 'P'] > 0).all()
    assert (charges[symbols == 'O'] < 0).all()
    np.testing.assert_allclose(cube_run.outputs.charges.get_array('populations').sum(), summary['n_electrons_bader'])
    assert cube_run.outputs.charges.base.attributes.get('units')['charges'] == 'e'


def test_chgcar_in_a_folder_gives_the_same_charges(python_code, napo3_structure, cube_run, tmp_path):
    """The VASP route: a CHGCAR (ρ·V) in a retrieved-like FolderData; same density, so the same charges."""
    density = bader.read_density(NAPO3_CUBE)
    bader.write_chgcar(tmp_path / 'CHGCAR', density.atoms, density.density)
    folder = orm.FolderData()
    folder.base.repository.put_object_from_file(str(tmp_path / 'CHGCAR'), 'CHGCAR')
    _, node = run_get_node(BaderCalculation, code=python_code, density=folder, density_filename=orm.Str('CHGCAR'),
                           structure=napo3_structure, valences=orm.Dict(CP2K_VALENCES))  # fmt: skip
    assert node.is_finished_ok, node.exit_message
    assert node.outputs.summary['format'] == 'chgcar'
    np.testing.assert_allclose(node.outputs.charges.get_array('charges'),
                               cube_run.outputs.charges.get_array('charges'), atol=1e-3)  # fmt: skip


@pytest.mark.parametrize('case, message', [
    ('missing_file', 'holds no aiida-ELECTRON_DENSITY-1_0.cube'),
    ('missing_valence', 'no valence charge Z_val for P'),
    ('other_structure', 'the atoms of the density file lie up to'),
    ('other_cell', 'the density grid spans another cell'),
    ('no_filename', 'a FolderData density needs `density_filename`'),
])  # fmt: skip
def test_bad_input_stores_nothing(python_code, napo3_structure, node_count, case, message):
    density, filename, structure, valences = orm.SinglefileData(NAPO3_CUBE), None, napo3_structure, CP2K_VALENCES
    if case in ('missing_file', 'no_filename'):
        density = orm.FolderData()
        density.base.repository.put_object_from_file(str(NAPO3_CUBE), 'density.cube.gz')
        filename = None if case == 'no_filename' else 'aiida-ELECTRON_DENSITY-1_0.cube'
    elif case == 'missing_valence':
        valences = {'Na': 9, 'O': 6}
    elif case == 'other_structure':
        atoms = napo3_atoms()
        atoms.rattle(0.2, seed=3)
        structure = orm.StructureData(ase=atoms)
    elif case == 'other_cell':
        atoms = napo3_atoms()
        atoms.set_cell(atoms.cell * 1.1, scale_atoms=False)
        structure = orm.StructureData(ase=atoms)
    inputs = {'code': python_code, 'density': density, 'structure': structure, 'valences': orm.Dict(valences)}
    if filename:
        inputs['density_filename'] = orm.Str(filename)
    before = node_count()
    with pytest.raises(ValueError, match=message):
        run_get_node(BaderCalculation, **inputs)
    assert node_count() == before
