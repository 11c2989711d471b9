"""Bad inputs to ``data import|export`` and ``potential evaluate``: one ``Error:`` line, no traceback, nothing stored
(docs/bad_inputs.md, "Data and potentials"). Also: one node per training set and per potential (reused by content)."""

from __future__ import annotations

import gzip
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from click.testing import CliRunner

from aiida_glassml.cli import cli
from aiida_glassml.common.frames import FrameSet


def _frames(n=2) -> FrameSet:
    rng = np.random.default_rng(0)
    atoms_list = []
    for i in range(n):
        atoms = Atoms('NaFePO4', positions=rng.random((7, 3)) * 6, cell=[6, 6, 6], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-30.0 - i, forces=rng.normal(size=(7, 3)))
        atoms_list.append(atoms)
    return FrameSet.from_atoms(atoms_list)


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict[str, pathlib.Path]:
    import pandas as pd

    folder = tmp_path_factory.mktemp('bad_data')
    good = folder / 'good.pckl.gzip'
    _frames().write_pacemaker_pickle(good)
    raw = good.read_bytes()
    paths = {'good': good, 'folder': folder / 'a_folder', 'existing': folder / 'existing.extxyz'}
    paths['folder'].mkdir()
    paths['existing'].write_text('keep me\n')
    (folder / 'truncated.pckl.gzip').write_bytes(raw[: len(raw) // 2])  # cut inside the gzip stream: "Aborted!"
    with gzip.open(folder / 'cut_pickle.pckl.gzip', 'wb') as handle:  # whole gzip, cut pickle: UnpicklingError
        handle.write(gzip.decompress(raw)[:200])
    (folder / 'not_gzip.pckl.gzip').write_bytes(b'plain text, not gzip\n')
    (folder / 'empty.pkl').write_bytes(b'')
    pd.to_pickle({'energy': [1.0]}, folder / 'a_dict.pckl.gzip', compression='gzip')
    pd.DataFrame({'energy': [1.0], 'forces': [np.zeros((1, 3))], 'ase_atoms': ['Na']}).to_pickle(
        folder / 'not_atoms.pckl.gzip', compression='gzip'
    )
    frame = pd.read_pickle(good, compression='gzip')
    frame['forces'] = ['abc'] * len(frame)
    frame.to_pickle(folder / 'text_forces.pckl.gzip', compression='gzip')
    for name in ('truncated', 'cut_pickle', 'not_gzip', 'a_dict', 'not_atoms', 'text_forces'):
        paths[name] = folder / f'{name}.pckl.gzip'
    paths['empty'] = folder / 'empty.pkl'
    return paths


def _fmt(args, files):
    return [a.format(**{k: str(v) for k, v in files.items()}) for a in args]


def _invoke_error(args, message, aiida_profile, node_count):
    before = node_count()
    result = CliRunner().invoke(cli, ['-p', aiida_profile.name, *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert 'Traceback' not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(errors) == 1 and message in errors[0], result.output
    assert node_count() == before
    return result


PICKLES = [
    ('truncated', 'not a readable pacemaker pickle (EOFError'),
    ('cut_pickle', 'not a readable pacemaker pickle (UnpicklingError'),
    ('not_gzip', 'not a readable pacemaker pickle (BadGzipFile'),
    ('empty', 'not a readable pacemaker pickle (EOFError'),
    ('a_dict', 'the pickle holds a dict, not a pacemaker pandas DataFrame'),
    ('not_atoms', 'row 0 of the pacemaker data frame: ase_atoms holds a str, not an ASE Atoms object'),
    ('text_forces', 'the pacemaker data frame holds malformed values: could not convert string to float'),
]


@pytest.mark.parametrize(('name', 'message'), PICKLES, ids=[n for n, _ in PICKLES])
def test_bad_pickle_one_line(name, message, files, reference_potential_yaml, aiida_profile, node_count):
    """Bad pacemaker pickles, through both commands that read them."""
    message = f'{files[name].name}: {message}'
    _invoke_error(['data', 'import', 'training-set', str(files[name])], message, aiida_profile, node_count)
    _invoke_error(['potential', 'evaluate', str(reference_potential_yaml), str(files[name])], message, aiida_profile,
                  node_count)  # fmt: skip


EXPORTS = [
    (['data', 'export', '{set}', '{folder}/missing/x.extxyz'], 'missing does not exist or is not a folder'),
    (['data', 'export', '{set}', '{folder}'], 'a_folder is a folder; give a file name'),
    (['data', 'export', '{set}', '{existing}'], 'existing.extxyz already exists; give --force to overwrite'),
    (['data', 'export', '{potential}', '{existing}'], 'is a file; a potential is exported into a folder'),
    (['data', 'export', '{potential}', '{folder}/missing/pot'], 'missing does not exist or is not a folder'),
]  # fmt: skip


@pytest.fixture(scope='module')
def nodes(files, reference_potential_yaml, reference_potential_yace, aiida_profile):
    from aiida_glassml.data import AcePotentialData, TrainingSetData

    return {
        'set': TrainingSetData(_frames()).store().pk,
        'potential': AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace).pk,
    }


@pytest.mark.parametrize(('args', 'message'), EXPORTS, ids=[' '.join(a[2:]) for a, _ in EXPORTS])
def test_bad_export_one_line(args, message, files, nodes, aiida_profile, node_count):
    _invoke_error(_fmt(args, {**files, **nodes}), message, aiida_profile, node_count)
    assert files['existing'].read_text() == 'keep me\n'


def test_export_force_and_existing_potential_files(files, nodes, tmp_path, aiida_profile):
    out = tmp_path / 'frames.extxyz'
    out.write_text('old\n')
    result = CliRunner().invoke(cli, ['data', 'export', str(nodes['set']), str(out), '--force'])
    assert result.exit_code == 0, result.output
    assert len(FrameSet.read_extxyz(out).energy) == 2
    folder = tmp_path / 'pot'
    assert CliRunner().invoke(cli, ['data', 'export', str(nodes['potential']), str(folder)]).exit_code == 0
    again = CliRunner().invoke(cli, ['data', 'export', str(nodes['potential']), str(folder)])
    assert again.exit_code == 1 and 'potential.yaml' in again.output and '--force' in again.output
    assert CliRunner().invoke(cli, ['data', 'export', str(nodes['potential']), str(folder), '-f']).exit_code == 0


@pytest.mark.parametrize(('reference', 'message'), [
    ('{"Na": -0.07}', "reference energies give ['Na'] but the data also contains ['Fe', 'O', 'P']"),
    ('{"Na": -0.07, "Xx": 1.0}', "unknown element(s) ['Xx']"),
    ('{"Na": "low"}', '--reference-energies must map element symbols to energies in eV'),
])  # fmt: skip
@pytest.mark.parametrize('store', [True, False])
def test_evaluate_checks_reference_energies_first(reference, message, store, nodes, aiida_profile, node_count):
    """Checked before the evaluation (and, with --store, before the calcfunction stores anything: it left 2 nodes)."""
    args = ['potential', 'evaluate', str(nodes['potential']), str(nodes['set']), '--reference-energies', reference]
    _invoke_error([*args, '--store'] if store else args, message, aiida_profile, node_count)


EXECUTABLE = shutil.which('aiida-glassml') or str(pathlib.Path(sys.executable).parent / 'aiida-glassml')


def test_evaluate_missing_file_without_profile(tmp_path, reference_potential_yaml):
    """No profile at all: "no such file", not a 40-line profile traceback. A subprocess, as the tests hold a profile."""
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path)}
    (tmp_path / '.aiida').mkdir()
    for args, name in (
        (['missing.yaml', str(reference_potential_yaml)], 'POTENTIAL missing.yaml'),
        ([str(reference_potential_yaml), 'missing.extxyz'], 'DATASET missing.extxyz'),
    ):  # fmt: skip
        proc = subprocess.run([EXECUTABLE, 'potential', 'evaluate', *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        output = (proc.stdout + proc.stderr).strip().splitlines()
        assert len(output) == 1 and output[0].startswith(f'Error: {name}: no such file'), output


def test_evaluate_missing_file_with_profile(aiida_profile, node_count):
    _invoke_error(['potential', 'evaluate', 'missing.yaml', 'missing.extxyz'],
                  'POTENTIAL missing.yaml: no such file, and no node has that PK, UUID or label', aiida_profile,
                  node_count)  # fmt: skip


def test_training_set_imported_twice_is_one_node(files, tmp_path, aiida_profile, node_count):
    """As potentials: the same content (frames, labels, metadata, level of theory) is stored once, and the command
    says which node it reused and that --label was not applied."""
    path = tmp_path / 'again.pckl.gzip'
    _frames(3).write_pacemaker_pickle(path)  # not the frames of the `nodes` fixture, which share this profile
    first = CliRunner().invoke(cli, ['data', 'import', 'training-set', str(path), '--label', 'first'])
    assert first.exit_code == 0 and first.output.startswith('Stored TrainingSetData<'), first.output
    pk = first.output.split('<')[1].split('>')[0]
    before = node_count()
    second = CliRunner().invoke(cli, ['data', 'import', 'training-set', str(path), '--label', 'second'])
    assert second.exit_code == 0, second.output
    assert second.output.startswith(f'Reused TrainingSetData<{pk}>'), second.output
    assert f'--label ignored: node {pk} keeps its label `first`' in second.output
    assert node_count() == before
    # a different level of theory (or sample type) is different content: a new node
    third = CliRunner().invoke(cli, ['data', 'import', 'training-set', str(path), '--level-of-theory',
                                     '{"engine": "vasp"}'])  # fmt: skip
    assert third.exit_code == 0 and third.output.startswith('Stored TrainingSetData<'), third.output
    assert node_count() == before + 1


@pytest.fixture(scope='module')
def cut5(reference_potential_yaml, tmp_path_factory) -> pathlib.Path:
    """The published potential's yaml edited to a 5.0 Å cutoff (the .yace beside it is still the 6.5 Å one)."""
    path = tmp_path_factory.mktemp('cut5') / 'cut5.yaml'
    path.write_text(reference_potential_yaml.read_text().replace('rcutij: 6.5', 'rcutij: 5.0'))
    return path


def test_yace_of_another_potential_is_refused(cut5, reference_potential_yace, aiida_profile, node_count):
    """It used to store both and report 5.0 Å while LAMMPS would run the 6.5 Å .yace."""
    _invoke_error(['data', 'import', 'potential', str(cut5), '--yace', str(reference_potential_yace)],
                  'the .yace is not the potential of the .yaml: bonds[Fe-Fe].rcut is 6.5 in the .yace but 5',
                  aiida_profile, node_count)  # fmt: skip


def test_yace_is_made_from_the_yaml_and_reuse_is_reported(cut5, reference_potential_yace, tmp_path, aiida_profile,
                                                          node_count):  # fmt: skip
    from aiida.orm import load_node

    from aiida_glassml.common import ace

    result = CliRunner().invoke(cli, ['data', 'import', 'potential', str(cut5), '--label', 'cut5'])
    assert result.exit_code == 0, result.output
    assert 'cutoff 5.0 Å' in result.output and '.yace made from the .yaml' in result.output
    node = load_node(int(result.output.split('<')[1].split('>')[0]))
    yace = ace.parse_yace(node.base.repository.get_object_content(node.YACE, mode='rb'))
    assert {bond['rcut'] for bond in yace['bonds'].values()} == {5.0}
    assert node.label == 'cut5'

    # the same yaml again: reused, and --yace/--label are not silently dropped
    before = node_count()
    again = CliRunner().invoke(cli, ['data', 'import', 'potential', str(cut5), '--label', 'other'])
    assert again.exit_code == 0 and again.output.startswith(f'Reused AcePotentialData<{node.pk}>'), again.output
    assert f'--label ignored: node {node.pk} keeps its label `cut5`' in again.output
    _invoke_error(['data', 'import', 'potential', str(cut5), '--yace', str(reference_potential_yace)],
                  'the .yace is not the potential of the .yaml', aiida_profile, node_count)  # fmt: skip
    same = tmp_path / 'same.yace'  # the same potential, written with other rounding in the last digit
    same.write_bytes(node.base.repository.get_object_content(node.YACE, mode='rb').replace(b'rcut: 5', b'rcut: 5.0'))
    ok = CliRunner().invoke(cli, ['data', 'import', 'potential', str(cut5), '--yace', str(same)])
    assert ok.exit_code == 0 and 'Note: --yace ignored: it is the same potential' in ok.output, ok.output
    assert node_count() == before
