"""``verdi data glassml.training_set|ace_potential|classical_potential list|show|export`` through the real verdi."""

from __future__ import annotations

import json


def _row_of(table: str, pk: int) -> str:
    """The line of a ``list`` table that starts with ``pk``."""
    return next(line for line in table.splitlines() if line.split()[:1] == [str(pk)])


def test_verdi_data_help_lists_the_glassml_types(run_verdi):
    result = run_verdi('data', '--help')
    assert result.exit_code == 0, result.output
    for name in ('glassml.training_set', 'glassml.ace_potential', 'glassml.classical_potential'):
        assert name in result.output
    group_help = run_verdi('data', 'glassml.training_set', '--help')
    assert group_help.exit_code == 0, group_help.output
    assert all(command in group_help.output for command in ('list', 'show', 'export'))


# -- training sets -------------------------------------------------------------------------------------------------
def test_training_set_list_and_show(run_verdi, stored_training_set):
    listed = run_verdi('data', 'glassml.training_set', 'list')
    assert listed.exit_code == 0, listed.output
    row = _row_of(listed.output, stored_training_set.pk)
    assert 'nafepo4-test' in row and '436' in row and '49902' in row and 'Fe Na O P' in row and 'vasp' in row

    shown = run_verdi('data', 'glassml.training_set', 'show', 'nafepo4-test')  # a label works, as in verdi
    assert shown.exit_code == 0, shown.output
    assert '436 frames, 49902 atoms, elements Fe Na O P, level of theory: vasp' in shown.output
    assert '"sha256": "' + stored_training_set.sha256 in shown.output


def test_training_set_export_writes_extxyz_and_refuses_to_overwrite(run_verdi, stored_training_set, tmp_path):
    from ase.io import read

    output = tmp_path / 'set.extxyz'
    result = run_verdi('data', 'glassml.training_set', 'export', stored_training_set.pk, output)
    assert result.exit_code == 0, result.output
    frames = read(output, ':')
    assert len(frames) == 436
    assert sum(len(atoms) for atoms in frames) == 49902

    output.write_text('keep me')
    refused = run_verdi('data', 'glassml.training_set', 'export', stored_training_set.pk, output)
    assert refused.exit_code == 1
    assert f'Error: {output} already exists; pass --force to overwrite.' in refused.output
    assert output.read_text() == 'keep me'
    forced = run_verdi('data', 'glassml.training_set', 'export', stored_training_set.pk, output, '--force')
    assert forced.exit_code == 0, forced.output
    assert len(read(output, ':')) == 436


def test_training_set_export_into_missing_folder_is_refused(run_verdi, stored_training_set, tmp_path):
    output = tmp_path / 'missing' / 'set.extxyz'
    result = run_verdi('data', 'glassml.training_set', 'export', stored_training_set.pk, output)
    assert result.exit_code == 1
    assert f'folder {output.parent} does not exist' in result.output
    assert not output.parent.exists()


def test_show_refuses_a_node_of_another_type(run_verdi, stored_training_set):
    result = run_verdi('data', 'glassml.ace_potential', 'show', stored_training_set.pk)
    assert result.exit_code != 0
    assert f'no AcePotentialData found with ID<{stored_training_set.pk}>' in result.output


# -- ACE potentials ------------------------------------------------------------------------------------------------
def test_ace_potential_list_and_show(run_verdi, stored_ace_potential):
    listed = run_verdi('data', 'glassml.ace_potential', 'list')
    assert listed.exit_code == 0, listed.output
    row = _row_of(listed.output, stored_ace_potential.pk)
    assert ' '.join(stored_ace_potential.elements) in row and str(stored_ace_potential.cutoff) in row and 'no' in row

    shown = run_verdi('data', 'glassml.ace_potential', 'show', stored_ace_potential.uuid)
    assert shown.exit_code == 0, shown.output
    assert f'elements {" ".join(stored_ace_potential.elements)}, cutoff {stored_ace_potential.cutoff} Å' in shown.output


def test_ace_potential_export_reimports_identically(run_verdi, stored_ace_potential, reference_potential_yaml,
                                                    reference_potential_yace, tmp_path):  # fmt: skip
    from aiida_glassml.data import AcePotentialData

    output = tmp_path / 'nafepo4.yaml'
    result = run_verdi('data', 'glassml.ace_potential', 'export', stored_ace_potential.pk, output)
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == reference_potential_yaml.read_bytes()
    assert output.with_suffix('.yace').read_bytes() == reference_potential_yace.read_bytes()
    assert not output.with_suffix('.asi').exists()  # this potential has no active set
    # same content: the importer finds the stored node by hash instead of making a new one
    reused = AcePotentialData.get_or_create(output, yace=output.with_suffix('.yace'))
    assert reused.is_stored and reused.base.attributes.get('sha256_yaml') == \
        stored_ace_potential.base.attributes.get('sha256_yaml')
    assert reused.pk == AcePotentialData.find_stored(reference_potential_yaml.read_bytes()).pk  # the first such node

    refused = run_verdi('data', 'glassml.ace_potential', 'export', stored_ace_potential.pk, output)
    assert refused.exit_code == 1
    assert 'already exist; pass --force to overwrite.' in refused.output


def test_ace_potential_export_needs_a_yaml_name(run_verdi, stored_ace_potential, tmp_path):
    result = run_verdi('data', 'glassml.ace_potential', 'export', stored_ace_potential.pk, tmp_path / 'pot.yace')
    assert result.exit_code == 1
    assert 'must end in .yaml' in result.output
    assert list(tmp_path.iterdir()) == []


# -- classical potentials ------------------------------------------------------------------------------------------
def test_classical_potential_list_and_show(run_verdi, stored_teter):
    listed = run_verdi('data', 'glassml.classical_potential', 'list')
    assert listed.exit_code == 0, listed.output
    row = _row_of(listed.output, stored_teter.pk)
    assert 'teter' in row and 'buckingham' in row and 'Na O P' in row

    shown = run_verdi('data', 'glassml.classical_potential', 'show', 'teter-lib')
    assert shown.exit_code == 0, shown.output
    assert 'teter (buckingham), elements Na O P' in shown.output
    assert stored_teter.references[0] in shown.output


def test_classical_potential_export_json_and_lammps(run_verdi, stored_teter, tmp_path):
    from aiida_glassml.md.potentials import ClassicalPotential

    as_json = tmp_path / 'teter.json'
    result = run_verdi('data', 'glassml.classical_potential', 'export', stored_teter.pk, as_json)
    assert result.exit_code == 0, result.output
    assert ClassicalPotential.from_dict(json.loads(as_json.read_text())) == stored_teter.get_potential()

    as_lammps = tmp_path / 'teter.in'
    result = run_verdi('data', 'glassml.classical_potential', 'export', stored_teter.pk, as_lammps,
                       '--species', 'O,Na,P')  # fmt: skip
    assert result.exit_code == 0, result.output
    commands = as_lammps.read_text()
    assert 'set type 1 charge -1.2  # O' in commands and 'set type 2 charge 0.6  # Na' in commands
    assert 'pair_style buck/coul/long 10' in commands and 'kspace_style pppm 1e-05' in commands

    refused = run_verdi('data', 'glassml.classical_potential', 'export', stored_teter.pk, as_lammps)
    assert refused.exit_code == 1
    assert f'{as_lammps} already exists; pass --force to overwrite.' in refused.output


def test_classical_potential_export_writes_three_body_file_beside(run_verdi, tmp_path):
    from aiida_glassml.data.classical_potential import ClassicalPotentialData
    from aiida_glassml.md.potentials import NB3B_FILE

    bmp = ClassicalPotentialData.from_library('bmp').store()
    output = tmp_path / 'bmp.lmp'
    result = run_verdi('data', 'glassml.classical_potential', 'export', bmp.pk, output, '--species', 'Na,Fe,P,O')
    assert result.exit_code == 0, result.output
    assert f'pair_coeff * * nb3b/screened {NB3B_FILE}' in output.read_text()
    assert (tmp_path / NB3B_FILE).read_text().startswith('# nb3b/screened parameters for')
    # the auxiliary file counts too: a second export refuses while any of the files exists
    output.unlink()
    refused = run_verdi('data', 'glassml.classical_potential', 'export', bmp.pk, output, '--species', 'Na,Fe,P,O')
    assert refused.exit_code == 1
    assert f'{tmp_path / NB3B_FILE} already exists; pass --force' in refused.output
    assert not output.exists()


def test_classical_potential_export_refuses_unknown_species_and_suffix(run_verdi, stored_teter, tmp_path):
    result = run_verdi('data', 'glassml.classical_potential', 'export', stored_teter.pk, tmp_path / 'a.in',
                       '--species', 'Na,Fe,O')  # fmt: skip
    assert result.exit_code == 1
    assert "--species Fe not in potential 'teter'" in result.output
    result = run_verdi('data', 'glassml.classical_potential', 'export', stored_teter.pk, tmp_path / 'a.txt')
    assert result.exit_code == 1
    assert 'use .json for the description' in result.output
    assert list(tmp_path.iterdir()) == []
