"""``aiida-glassml structures generate`` through click's CliRunner on the test profile."""

import ase.io
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_glassml.cli import cli


@pytest.fixture
def invoke(aiida_profile_clean):
    def run(*args):
        return CliRunner().invoke(cli, ['-p', aiida_profile_clean.name, 'structures', 'generate', *args])

    return run


def test_generate_the_issue_example_and_write_extxyz(invoke, tmp_path):
    output = tmp_path / 'glass.extxyz'
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--atoms', '3003', '--density',
                    '3.38', '--seed', '1', '--output', str(output))  # fmt: skip
    assert result.exit_code == 0, result.output
    structures = orm.QueryBuilder().append(orm.StructureData).all(flat=True)
    assert len(structures) == 1
    assert f'Stored StructureData<{structures[0].pk}>' in result.output
    atoms = ase.io.read(output)
    assert len(atoms) == 3003
    assert atoms.get_chemical_formula() == 'Fe429Na429O1716P429'
    assert atoms.info['seed'] == 1 and atoms.info['uuid'] == structures[0].uuid
    assert atoms.get_masses().sum() / atoms.get_volume() * 1.66053906660 == pytest.approx(3.38, rel=1e-6)


def test_generate_grid_with_strains_makes_a_group(invoke, tmp_path):
    output = tmp_path / 'grid.extxyz'
    result = invoke('--units', 'Na2O,P2O5', '--grid-step', '0.5', '--atoms', '40', '--seed', '5', '--strains',
                    '0.8,1.2', '--output', str(output))  # fmt: skip
    assert result.exit_code == 0, result.output
    group = orm.load_group('glassml/structures/Na2O-P2O5/step0.5/atoms40/seed5')
    assert group.count() == 6
    assert result.output.count('Stored StructureData<') == 6
    frames = ase.io.read(output, index=':')
    assert sorted(f.info['strain_factor'] for f in frames) == [0.8, 0.8, 0.8, 1.2, 1.2, 1.2]


def test_generate_mixed_anion_formula_with_estimated_density(invoke):
    result = invoke('--units', 'Na2S,P2S5,P2O5', '--formula', 'Na4P2S5.5O1.5', '--atoms', '52')
    assert result.exit_code == 0, result.output
    structure = orm.QueryBuilder().append(orm.StructureData).one()[0]
    assert structure.get_formula(mode='hill') == 'Na16O6P8S22'
    assert 'CRC Handbook' in structure.base.attributes.get('density_source')


def test_generate_rejects_bad_input_without_storing(invoke, node_count):
    before = node_count()
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--oxidation-state', 'Fe=+3')
    assert result.exit_code == 1
    assert 'net charge +0.5 e' in result.output
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--grid-step', '0.1')
    assert result.exit_code == 1
    assert 'exactly one of --fractions, --formula or --grid-step' in result.output
    assert node_count() == before


def test_generate_prints_realised_next_to_requested_composition(invoke):
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.3,0.4,0.3', '--atoms', '50', '--density', '3.0')
    assert result.exit_code == 0, result.output
    # 50 atoms cannot hold 0.3/0.4/0.3 exactly: Na8Fe5P8O29 realises 4/13, 5/13, 4/13
    assert 'composition requested -> realised: Na2O 0.3000 -> 0.3077, FeO 0.4000 -> 0.3846, P2O5 0.3000 -> 0.3077' \
        in result.output  # fmt: skip


@pytest.mark.parametrize(('cell', 'lengths'), [('10,10,12', [10, 10, 12]), ('10,0,0,0,10,0,0,0,12', [10, 10, 12])])
def test_generate_with_a_given_cell(invoke, tmp_path, cell, lengths):
    output = tmp_path / 'cell.extxyz'
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--atoms', '98', '--cell', cell,
                    '--output', str(output))  # fmt: skip
    assert result.exit_code == 0, result.output
    atoms = ase.io.read(output)
    assert atoms.cell.lengths() == pytest.approx(lengths)
    assert atoms.info['density_source'] == 'cell'
    # with a density the shape is kept and scaled
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--atoms', '98', '--cell', cell,
                    '--density', '3.38', '--output', str(output))  # fmt: skip
    assert result.exit_code == 0, result.output
    scaled = ase.io.read(output).cell.lengths()
    assert scaled[2] / scaled[0] == pytest.approx(1.2)


def test_generate_rigid_tetrahedra_and_bad_cell(invoke, node_count):
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--atoms', '112', '--density',
                    '3.07', '--min-distance', '1.9', '--units-geometry', 'tetrahedra')  # fmt: skip
    assert result.exit_code == 0, result.output
    structure = orm.QueryBuilder().append(orm.StructureData).one()[0]
    assert structure.base.attributes.get('units_geometry') == 'tetrahedra'
    before = node_count()
    result = invoke('--units', 'Na2O,FeO,P2O5', '--fractions', '0.25,0.5,0.25', '--cell', '10,10')
    assert result.exit_code == 1 and 'must be three lengths' in result.output
    result = invoke('--units', 'Na2O,P2O5', '--fractions', '0.5,0.5', '--units-geometry', 'tetrahedra')
    assert result.exit_code == 1 and 'isolated XO4 tetrahedra need 4' in result.output
    assert node_count() == before
