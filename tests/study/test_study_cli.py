"""`aiida-glassml study run|status|show` on bad input: one line naming the problem and the fix, exit code 1, and
nothing stored."""

from __future__ import annotations

import pathlib

import pytest

WORKFLOWS = pathlib.Path(__file__).resolve().parents[2] / 'workflows'


@pytest.fixture
def invoke():
    from click.testing import CliRunner

    from aiida_glassml.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('Error: '), result.output
    return lines[0]


def test_study_run_refuses_bad_recipes(invoke, tmp_path, node_count, aiida_profile):
    before = node_count()
    bad = tmp_path / 'bad.yaml'
    bad.write_text((WORKFLOWS / 'demo.yaml').read_text().replace('temperatures: [600, 800, 1000]',
                                                                 'temperatures: [600, 0, 1000]'))  # fmt: skip
    line = one_error_line(invoke('study', 'run', str(bad)))
    number = next(i for i, l in enumerate(bad.read_text().splitlines(), 1) if 'temperatures:' in l)
    assert f'{bad}:{number}: `diffusion.temperatures`: temperatures are positive numbers in K, got 0' in line
    assert 'no such recipe file' in one_error_line(invoke('study', 'run', str(tmp_path / 'absent.yaml')))
    assert 'does not exist' in one_error_line(invoke('study', 'run', str(bad), '--archive',
                                                     str(tmp_path / 'no' / 'a.aiida')))  # fmt: skip
    assert node_count() == before


def test_study_run_without_daemon_says_how(invoke, installed_code, tmp_path, node_count, monkeypatch):
    import aiida_glassml.workflows.study as study

    codes = {'python': installed_code('python', 'core.shell', label='glassml-python'),
             'lammps': installed_code('lmp', 'glassml.lammps_md', label='lammps')}  # fmt: skip
    recipe = tmp_path / 'classical.yaml'
    recipe.write_text('study: classical\ncompositions:\n  Na3PO4: {units: [Na2O, P2O5], fractions: [0.75, 0.25]}\n'
                      'potential: {classical: bmp}\nglasses: {engine: lammps, protocol: fast}\n')  # fmt: skip
    original = study.build_study
    monkeypatch.setattr(study, 'build_study', lambda path: original(path, codes=codes))
    before = node_count()
    line = one_error_line(invoke('study', 'run', str(recipe)))
    assert 'daemon' in line and 'verdi daemon start' in line and '--run' in line
    assert node_count() == before


def test_study_status_and_show_refuse_other_nodes(invoke, aiida_profile):
    from aiida import orm

    node = orm.Int(3).store()
    assert 'not a GlassStudyWorkChain' in one_error_line(invoke('study', 'status', str(node.pk)))
    assert 'no node' in one_error_line(invoke('study', 'show', '987654321'))
