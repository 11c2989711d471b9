"""``PaceSelectCalculation`` (``pace_select`` as a CalcJob): D-optimal selection of active-learning candidates from
several MD runs, each selected frame traced back to its run, step and gamma; the pure settings, pool and mapping;
bad input raises before anything is stored."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run, run_get_node

from aiida_glassml.calculations.md_outputs import trajectory_from_frames
from aiida_glassml.calculations.pace_select import PaceSelectCalculation
from aiida_glassml.data import AcePotentialData
from aiida_glassml.fitting import selection
from aiida_glassml.fitting.settings import FitSettingsError
from aiida_glassml.md.outputs import wrap_with_images

#: candidate sources: frames of the DFT test set with one atom count each (a trajectory has a fixed atom count)
SOURCES = {'run_a': (100, 100), 'run_b': (102, 25)}  # label: (atoms, MD steps between frames)
FRAMES_PER_SOURCE = 8


@pytest.fixture(scope='session')
def active_set_files(tmp_path_factory, reference_potential_yaml, reference_test_set_path):
    """The published potential with an active set from 60 frames of the DFT test set (as in tests/md_ase)."""
    import pandas as pd

    executable = shutil.which('pace_activeset')
    if executable is None:
        pytest.skip('`pace_activeset` (python-ace) is not installed')
    folder = tmp_path_factory.mktemp('select_active_set')
    frames = pd.read_pickle(reference_test_set_path, compression='gzip').sample(60, random_state=0)
    frames.to_pickle(folder / 'frames.pckl.gzip', compression='gzip')
    yaml_path = folder / 'output_potential.yaml'
    shutil.copy(reference_potential_yaml, yaml_path)
    subprocess.run([executable, '-V', '-d', 'frames.pckl.gzip', yaml_path.name], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    return {'yaml': yaml_path, 'asi': folder / 'output_potential.asi', 'used': set(frames.index)}


@pytest.fixture(scope='session')
def candidate_frames(active_set_files, reference_test_set_path):
    """Per source: (atoms list, MD steps, max gamma by pyace with the active set) from frames not in the set."""
    import pandas as pd
    from pyace import PyACECalculator

    data = pd.read_pickle(reference_test_set_path, compression='gzip')
    data = data[~data.index.isin(active_set_files['used'])]
    calc = PyACECalculator(str(active_set_files['yaml']))
    calc.set_active_set(str(active_set_files['asi']))
    sources = {}
    for label, (n_atoms, interval) in SOURCES.items():
        atoms_list = [a.copy() for a in data['ase_atoms'] if len(a) == n_atoms][:FRAMES_PER_SOURCE]
        gammas = []
        for atoms in atoms_list:
            atoms.calc = calc
            atoms.get_potential_energy()
            gammas.append(float(np.max(calc.results['gamma'])))
            atoms.calc = None
        sources[label] = (atoms_list, interval * np.arange(1, len(atoms_list) + 1), np.array(gammas))
    return sources


def extrapolative_trajectory(atoms_list, steps, gammas, symbols=None) -> orm.TrajectoryData:
    """The layout of an MD run's ``extrapolative_trajectory``: wrapped positions, ``images``, ``max_gamma``."""
    wrapped = [wrap_with_images(a.positions, a.cell.array) for a in atoms_list]
    return trajectory_from_frames(
        steps, np.array([a.cell.array for a in atoms_list]), symbols or atoms_list[0].get_chemical_symbols(),
        np.array([w[0] for w in wrapped]), np.array([w[1] for w in wrapped]), arrays={'max_gamma': gammas},
    )  # fmt: skip


@pytest.fixture
def ace_potential(aiida_profile, active_set_files, reference_potential_yace):
    return AcePotentialData.get_or_create(active_set_files['yaml'], yace=reference_potential_yace,
                                          asi=active_set_files['asi'])  # fmt: skip


@pytest.fixture
def select_code(installed_code):
    return installed_code('pace_select', 'core.shell')


def _builder(code, potential, candidates, settings=None, **options):
    builder = PaceSelectCalculation.get_builder()
    builder.code, builder.potential = code, potential
    if candidates is not None:
        builder.candidates = candidates
    if settings is not None:
        builder.settings = orm.Dict(settings)
    builder.metadata.options.update(options)
    return builder


# ------------------------------------------------------------------------------------------------ pure
def test_selection_settings():
    assert selection.validate_selection_settings() == selection.DEFAULT_SELECTION_SETTINGS
    assert selection.validate_selection_settings({'max_select': 20, 'batch_size': None})['batch_size'] is None
    for settings, message in [
        ({'max_select': 0}, 'max_select must be an integer >= 1'),
        ({'max_select': True}, 'max_select must be an integer >= 1'),
        ({'maxvol_iters': 2.5}, 'maxvol_iters must be an integer >= 1'),
        ({'maxvol_refinement': -1}, 'maxvol_refinement must be an integer >= 0'),
        ({'gamma_tolerance': 0.9}, 'gamma_tolerance must be >= 1'),
        ({'batch_size': 0}, 'batch_size must be `auto`, null'),
        ({'memory_limit': '__import__("os")'}, 'memory_limit must be `auto` or a size'),
        ({'max_selected': 10}, r"unknown selection setting\(s\) \['max_selected'\]"),
    ]:  # fmt: skip
        with pytest.raises(FitSettingsError, match=message):
            selection.validate_selection_settings(settings)


def test_select_command_line():
    settings = selection.validate_selection_settings({'max_select': 3, 'gamma_tolerance': 1.05, 'batch_size': 10})
    assert selection.select_cmdline(settings, 40, 'c.pckl.gzip', 'p.yaml', 'p.asi', 's.pkl.gz') == [
        '-p', 'p.yaml', '-a', 'p.asi', '-m', '3', '-o', 's.pkl.gz', '-b', '10', '-g', '1.05', '-i', '300', '-r', '2',
        '-mem', 'auto', 'c.pckl.gzip']  # fmt: skip
    # a batch as large as the pool would make pace_select split it into zero batches
    assert selection.select_cmdline(settings, 10, 'c', 'p', 'a', 's')[9] == 'none'
    settings = selection.validate_selection_settings({'memory_limit': '1MB'})
    functions, atoms = {'Na': 248, 'O': 248}, {'Na': 800, 'O': 800}
    with pytest.raises(FitSettingsError, match=r'memory_limit 1MB cannot hold .* \(about 2MB needed\)'):
        selection.check_memory_limit(settings, functions, atoms, 16)
    selection.check_memory_limit({**settings, 'memory_limit': '1GB'}, functions, atoms, 16)  # fits at once


def _source(label, atoms_list, steps, gammas):
    return selection.CandidateSource(
        label=label, uuid=f'uuid-{label}', symbols=atoms_list[0].get_chemical_symbols(),
        positions=np.array([a.positions for a in atoms_list]), cells=np.array([a.cell.array for a in atoms_list]),
        steps=steps, max_gamma=gammas,
    )  # fmt: skip


def test_pool_and_mapping(candidate_frames, reference_frames, tmp_path):
    atoms_a, steps_a, gammas_a = candidate_frames['run_a']
    atoms_b, steps_b, _ = candidate_frames['run_b']
    pool = selection.candidate_pool([_source('run_a', atoms_a, steps_a, gammas_a),
                                     _source('run_b', atoms_b, steps_b, None),
                                     _source('copy', atoms_a[:1], [7], [2.0])])  # fmt: skip
    assert len(pool) == 2 * FRAMES_PER_SOURCE + 1 and list(pool['candidate_index']) == list(range(len(pool)))
    assert list(pool['step'][:3]) == [100, 200, 300] and np.isnan(pool['max_gamma'][FRAMES_PER_SOURCE])
    # the same hash as FrameSet.frame_hashes, so selected frames can be found in training sets too
    assert selection.atoms_hash(reference_frames.select([5]).to_atoms()[0]) == reference_frames.frame_hashes()[5]

    # what pace_select writes: the chosen rows of the pool, through a pickle
    path = tmp_path / 'selected.pkl.gz'
    pool.iloc[[9, 2, 16]].to_pickle(path)
    selected = selection.read_selection(path)
    assert selection.map_selection(selected, pool) == [9, 2, 16]
    # without the index column, or with a wrong one, the exact structure hash decides: an exact duplicate (16 is
    # frame 0 again) then maps to the first candidate not yet taken
    assert selection.map_selection(selected.drop(columns=['candidate_index']), pool) == [9, 2, 0]
    swapped = selected.assign(candidate_index=[2, 9, 16])
    assert selection.map_selection(swapped, pool) == [9, 2, 16]
    duplicates = pool.iloc[[16, 0]].drop(columns=['candidate_index'])
    assert sorted(selection.map_selection(duplicates, pool)) == [0, 16]
    moved = selected.copy()
    moved.at[moved.index[1], 'ase_atoms'] = moved['ase_atoms'].iloc[1].copy()
    moved['ase_atoms'].iloc[1].positions[0, 0] += 1e-9
    with pytest.raises(selection.SelectionOutputError, match='selected frame 1 .* matches no candidate'):
        selection.map_selection(moved, pool)

    summary = selection.selection_summary(pool, [9, 2], max_select=2, n_selectable=5)
    assert summary['n_candidates_per_source'] == {'run_a': 8, 'run_b': 8, 'copy': 1}
    assert summary['frames'] == [
        {'key': 'selected_0000', 'source': 'run_b', 'source_uuid': 'uuid-run_b', 'step': 50, 'frame': 1,
         'max_gamma': None, 'candidate_index': 9},
        {'key': 'selected_0001', 'source': 'run_a', 'source_uuid': 'uuid-run_a', 'step': 300, 'frame': 2,
         'max_gamma': float(gammas_a[2]), 'candidate_index': 2},
    ]  # fmt: skip
    assert selection.selectable_count('... I - Overall 22 structures selected\n') == 22
    (tmp_path / 'bad.pkl.gz').write_bytes(b'not a pickle')
    with pytest.raises(selection.SelectionOutputError, match='not a gzipped pickle'):
        selection.read_selection(tmp_path / 'bad.pkl.gz')


# ------------------------------------------------------------------------------------------------ real runs
@pytest.mark.slow
def test_select_from_two_runs(select_code, ace_potential, candidate_frames):
    candidates = {label: extrapolative_trajectory(*frames) for label, frames in candidate_frames.items()}
    results, job = run_get_node(_builder(select_code, ace_potential, candidates, {'max_select': 3}))
    assert job.is_finished_ok, job.exit_message
    record = results['selection'].get_dict()
    assert record['n_candidates'] == 2 * FRAMES_PER_SOURCE
    assert record['n_candidates_per_source'] == {'run_a': FRAMES_PER_SOURCE, 'run_b': FRAMES_PER_SOURCE}
    assert record['n_selectable'] > 3 and record['n_selected'] == 3 and record['max_select'] == 3
    assert sorted(results['structures']) == ['selected_0000', 'selected_0001', 'selected_0002']

    inputs = job.inputs.candidates
    assert {label: node.uuid for label, node in inputs.items()} == {k: v.uuid for k, v in candidates.items()}
    assert len({frame['candidate_index'] for frame in record['frames']}) == 3
    for frame in record['frames']:
        trajectory = inputs[frame['source']]
        assert frame['source_uuid'] == trajectory.uuid
        assert frame['step'] == trajectory.get_stepids()[frame['frame']]
        # AiiDA stores node attributes (Dict values, StructureData sites) to 14 significant digits
        assert frame['max_gamma'] == pytest.approx(trajectory.get_array('max_gamma')[frame['frame']], rel=1e-13)
        structure = results['structures'][frame['key']]
        assert structure.creator.uuid == job.uuid
        # the frame of the candidate trajectory itself
        assert np.allclose(structure.get_ase().positions, trajectory.get_positions()[frame['frame']], atol=1e-11, rtol=0)
        assert np.allclose(structure.cell, trajectory.get_cells()[frame['frame']], rtol=0, atol=1e-11)
        assert structure.get_ase().get_chemical_symbols() == trajectory.symbols
    assert results['selection'].creator.uuid == job.uuid

    # no cap: every frame pace_select finds informative; a batch larger than the pool runs all at once
    results, job = run_get_node(_builder(select_code, ace_potential, candidates, {'batch_size': 100}))
    assert job.is_finished_ok, job.exit_message
    record = results['selection'].get_dict()
    assert 3 < record['n_selected'] == record['n_selectable'] <= 2 * FRAMES_PER_SOURCE
    assert len(results['structures']) == record['n_selected']


@pytest.mark.slow
def test_pace_select_failure_is_one_line(select_code, ace_potential, candidate_frames):
    candidates = {'run_a': extrapolative_trajectory(*candidate_frames['run_a'])}
    # a memory cap on the job (as a cluster would impose) makes pace_select itself fail
    _, job = run_get_node(_builder(select_code, ace_potential, candidates, prepend_text='ulimit -v 400000'))
    assert job.exit_status == PaceSelectCalculation.exit_codes.ERROR_PACE_SELECT_FAILED.status
    assert job.exit_message.startswith('pace_select failed: ') and '\n' not in job.exit_message
    assert 'Error' in job.exit_message
    assert 'structures' not in job.outputs and 'selection' not in job.outputs


@pytest.mark.parametrize(('case', 'message'), [
    ('no active set', 'has no active set (.asi), which pace_select needs; build one with ActiveSetCalculation'),
    ('uncovered element', "candidates 'run_a' contain ['V'] but the potential covers ['Fe', 'Na', 'O', 'P']"),
    ('no candidates', 'no candidates: give at least one TrajectoryData under `candidates`'),
    ('empty trajectory', "candidates ['run_b'] hold no frames"),
    ('bad settings', 'max_select must be an integer >= 1'),
    ('memory too small', 'memory_limit 1MB cannot hold the active set plus one batch'),
])  # fmt: skip
def test_bad_input_raises_before_storing(select_code, ace_potential, candidate_frames, reference_potential_yaml,
                                         reference_potential_yace, node_count, case, message):  # fmt: skip
    potential, settings = ace_potential, None
    candidates = {'run_a': extrapolative_trajectory(*candidate_frames['run_a'])}
    if case == 'no active set':
        potential = AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)
    elif case == 'uncovered element':
        atoms_list, steps, gammas = candidate_frames['run_a']
        symbols = ['V', *atoms_list[0].get_chemical_symbols()[1:]]
        candidates = {'run_a': extrapolative_trajectory(atoms_list, steps, gammas, symbols=symbols)}
    elif case == 'no candidates':
        candidates = None
    elif case == 'empty trajectory':
        empty = orm.TrajectoryData()
        empty.set_trajectory(symbols=['Na'], positions=np.zeros((0, 1, 3)), cells=np.zeros((0, 3, 3)),
                             stepids=np.zeros(0, dtype=int))  # fmt: skip
        candidates['run_b'] = empty
    elif case == 'bad settings':
        settings = {'max_select': 0}
    else:
        settings = {'memory_limit': '1MB'}
    before = node_count()
    with pytest.raises(ValueError) as info:
        run(_builder(select_code, potential, candidates, settings))
    assert message in str(info.value)
    assert node_count() == before
