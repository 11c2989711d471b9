"""The ``aiida-glassml`` command line: help, data import/export, show, status."""

import json

import pytest
from click.testing import CliRunner

from aiida_glassml.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_help_lists_foundation_commands(runner):
    result = runner.invoke(cli, ['--help'])
    assert result.exit_code == 0, result.output
    for command in ('setup', 'data', 'status'):
        assert command in result.output
    data_help = runner.invoke(cli, ['data', '--help']).output
    assert 'import' in data_help and 'export' in data_help


def test_training_set_import_export_round_trip(runner, reference_test_set_path, tmp_path, aiida_profile):
    result = runner.invoke(cli, ['data', 'import', 'training-set', str(reference_test_set_path), '--label', 'nafepo4-test'])
    assert result.exit_code == 0, result.output
    assert '436 frames, 49902 atoms' in result.output
    # a label works as identifier, as in verdi
    out = tmp_path / 'out.extxyz'
    result = runner.invoke(cli, ['data', 'export', 'nafepo4-test', str(out)])
    assert result.exit_code == 0, result.output
    from ase.io import read

    assert len(read(out, ':')) == 436
    shown = json.loads(runner.invoke(cli, ['data', 'show', 'nafepo4-test']).output)
    assert shown['n_frames'] == 436 and shown['type'] == 'TrainingSetData'


def test_potential_import_is_idempotent(runner, reference_potential_yaml, reference_potential_yace, tmp_path, aiida_profile):
    args = ['data', 'import', 'potential', str(reference_potential_yaml), '--yace', str(reference_potential_yace)]
    first = runner.invoke(cli, args)
    second = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    pk = first.output.split('<')[1].split('>')[0]
    assert second.output.startswith(f'Reused AcePotentialData<{pk}>')  # stored once, by hash, and says so
    result = runner.invoke(cli, ['data', 'export', pk, str(tmp_path / 'pot')])
    assert result.exit_code == 0, result.output
    assert (tmp_path / 'pot' / 'potential.yace').read_bytes() == reference_potential_yace.read_bytes()


def test_import_of_bad_file_fails_cleanly(runner, tmp_path, node_count, aiida_profile):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('cutoff: 6.5\n')
    before = node_count()
    result = runner.invoke(cli, ['data', 'import', 'potential', str(bad)])
    assert result.exit_code != 0
    assert 'not a pacemaker B-basis potential' in result.output
    assert node_count() == before


def test_status_shows_profile_and_codes(runner, installed_code, aiida_profile):
    installed_code('pacemaker', 'core.shell')
    result = runner.invoke(cli, ['status'])
    assert result.exit_code == 0, result.output
    assert 'core.sqlite_dos' in result.output
    assert 'pacemaker' in result.output
