"""TrainingSetData: storage, round trips, hashing, merge/append and bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_glassml.calcfunctions.training_set import append_training_set, merge_training_sets
from aiida_glassml.common.frames import FrameSet, FrameValidationError
from aiida_glassml.data import TrainingSetData


def make_atoms(n=4, seed=0, energy=-10.0, stress=True, magmoms=False):
    rng = np.random.default_rng(seed)
    atoms = Atoms('NaPO2', positions=rng.random((n, 3)) * 5, cell=[5, 5, 5], pbc=True)
    results = {'energy': energy + seed, 'forces': rng.normal(size=(n, 3))}
    if stress:
        results['stress'] = rng.normal(size=6) * 0.01
    if magmoms:
        results['magmoms'] = rng.random(n)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@pytest.fixture(scope='module')
def reference_frameset(reference_test_set_path):
    return FrameSet.read_pacemaker_pickle(reference_test_set_path)


def test_reference_test_set_imports_exactly(reference_test_set_path, aiida_profile):
    node = TrainingSetData.from_pacemaker_pickle(reference_test_set_path).store()
    assert node.n_frames == 436
    assert node.n_atoms_total == 49902
    assert node.elements == ['Fe', 'Na', 'O', 'P']
    assert len(node.sha256) == 64
    import pandas as pd

    frame = pd.read_pickle(reference_test_set_path, compression='gzip')
    frameset = node.get_frameset()
    np.testing.assert_array_equal(frameset.energy, frame['energy'].to_numpy())
    np.testing.assert_array_equal(frameset.forces, np.concatenate([np.asarray(f) for f in frame['forces']]))
    assert [m['iteration'] for m in frameset.metadata] == frame['iteration'].tolist()


@pytest.mark.parametrize('suffix', ['.pckl.gzip', '.extxyz'])
def test_export_import_round_trip_is_exact(reference_frameset, tmp_path, suffix, aiida_profile):
    node = TrainingSetData(reference_frameset.select(range(0, 436, 7))).store()
    path = tmp_path / f'set{suffix}'
    node.export(path)
    back = TrainingSetData.from_file(path).get_frameset()
    original = node.get_frameset()
    np.testing.assert_array_equal(back.energy, original.energy)
    np.testing.assert_array_equal(back.forces, original.forces)
    np.testing.assert_array_equal(back.numbers, original.numbers)
    np.testing.assert_array_equal(back.positions, original.positions)
    np.testing.assert_array_equal(back.cells, original.cells)
    assert [m['iteration'] for m in back.metadata] == [m['iteration'] for m in original.metadata]


def test_stress_magmoms_and_metadata_survive_storage(aiida_profile):
    atoms = [make_atoms(seed=i, magmoms=(i % 2 == 0), stress=(i != 1)) for i in range(3)]
    meta = [{'source_uuid': f'uuid-{i}', 'sample_type': 'aimd', 'temperature': 5000.0, 'iteration': 0,
             'composition': 'NaPO2'} for i in range(3)]  # fmt: skip
    node = TrainingSetData.from_atoms(atoms, metadata=meta).store()
    fs = node.get_frameset()
    assert fs.has_stress.tolist() == [True, False, True]
    assert fs.has_magmoms.tolist() == [True, False, True]
    back = node.get_atoms()
    np.testing.assert_array_equal(back[0].get_magnetic_moments(), atoms[0].calc.results['magmoms'])
    np.testing.assert_array_equal(back[2].get_stress(voigt=True), atoms[2].calc.results['stress'])
    assert back[1].info['source_uuid'] == 'uuid-1' and back[1].info['temperature'] == 5000.0
    assert node.base.attributes.get('has_magmoms') is True


def test_stored_node_is_immutable_and_hash_is_stable(aiida_profile):
    atoms = [make_atoms(seed=i) for i in range(2)]
    a = TrainingSetData.from_atoms(atoms).store()
    b = TrainingSetData.from_atoms(atoms).store()
    assert a.sha256 == b.sha256
    assert a.base.caching.get_hash() == b.base.caching.get_hash()
    from aiida.common.exceptions import ModificationNotAllowed

    with pytest.raises(ModificationNotAllowed):
        a.base.attributes.set('n_frames', 99)
    with pytest.raises(ModificationNotAllowed):
        a.base.repository.put_object_from_bytes(b'x', 'frames.npz')


def test_merge_and_append_drop_exact_duplicates(aiida_profile):
    first = TrainingSetData.from_atoms([make_atoms(seed=i) for i in range(3)]).store()
    second = TrainingSetData.from_atoms([make_atoms(seed=i) for i in range(2, 5)]).store()
    result = merge_training_sets(a=first, b=second)
    merged = result['training_set']
    assert merged.n_frames == 5
    assert result['report']['n_duplicates_dropped'] == 1
    assert first.n_frames == 3 and second.n_frames == 3  # old nodes unchanged
    appended = append_training_set(first, second)
    assert appended['training_set'].n_frames == 5
    assert appended['report'].get_dict() == {'n_frames_in': 6, 'n_frames_out': 5, 'n_duplicates_dropped': 1}
    # provenance: the merged set points back to both inputs
    incoming = {link.node.uuid for link in merged.creator.base.links.get_incoming().all()}
    assert {first.uuid, second.uuid} <= incoming


def _frame(**overrides):
    frame = {'symbols': ['Na', 'P'], 'positions': np.zeros((2, 3)) + [[0, 0, 0], [1.5, 0, 0]], 'cell': np.eye(3) * 5,
             'energy': -3.0, 'forces': np.zeros((2, 3))}  # fmt: skip
    frame.update(overrides)
    return frame


@pytest.mark.parametrize(
    'frames, message',
    [
        ([_frame(energy=float('nan'))], 'energy contains NaN'),
        ([_frame(energy=float('inf'))], 'energy contains NaN or infinite'),
        ([_frame(forces=np.array([[0, 0, np.nan], [0, 0, 0]]))], 'forces contains NaN'),
        ([_frame(forces=np.zeros((3, 3)))], 'forces have shape (3, 3) but the frame has 2 atoms'),
        ([_frame(symbols=['Na', 'Xx'])], "unknown chemical symbol(s) ['Xx']"),
        ([], 'the training set is empty'),
    ],
)
def test_bad_input_is_rejected_and_nothing_stored(frames, message, node_count, aiida_profile):
    before = node_count()
    with pytest.raises(FrameValidationError) as excinfo:
        TrainingSetData(FrameSet.from_frames(frames)).store()
    assert message in str(excinfo.value)
    assert node_count() == before


def test_empty_pacemaker_frame_is_rejected(tmp_path, node_count, aiida_profile):
    import pandas as pd

    path = tmp_path / 'empty.pckl.gzip'
    pd.DataFrame({'energy': [], 'forces': [], 'ase_atoms': []}).to_pickle(path, compression='gzip')
    before = node_count()
    with pytest.raises(FrameValidationError, match='empty'):
        TrainingSetData.from_file(path)
    assert node_count() == before


def test_extxyz_with_unknown_symbol_is_rejected(tmp_path, node_count, aiida_profile):
    path = tmp_path / 'bad.extxyz'
    path.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.0 pbc="T T T"\n'
                    'Na 0 0 0 0 0 0\nXx 1.5 0 0 0 0 0\n')  # fmt: skip
    before = node_count()
    with pytest.raises(FrameValidationError, match="unknown chemical symbol 'Xx'"):
        TrainingSetData.from_file(path)
    assert node_count() == before


def test_extxyz_virial_and_extra_info_are_kept(tmp_path, aiida_profile):
    """Nothing a file carries is lost: a virial becomes the stress, extra scalars become metadata."""
    path = tmp_path / 'virial.extxyz'
    virial = '1 0 0 0 2 0 0 0 3'
    path.write_text(f'2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.0 '
                    f'virial="{virial}" config_type=melt temperature=3000 pbc="T T T"\n'
                    'Na 0 0 0 0.1 0 0\nP 1.5 0 0 -0.1 0 0\n')  # fmt: skip
    node = TrainingSetData.from_file(path).store()
    frames = node.get_frameset()
    assert frames.has_stress.tolist() == [True]
    np.testing.assert_allclose(frames.stress[0], [-1 / 125, -2 / 125, -3 / 125, 0, 0, 0])
    assert frames.metadata[0]['config_type'] == 'melt'
    assert frames.metadata[0]['temperature'] == 3000.0


@pytest.mark.parametrize('suffix', ['.pckl.gzip', '.extxyz'])
def test_stress_magmoms_and_metadata_round_trip_through_files(suffix, tmp_path, aiida_profile):
    atoms = [make_atoms(seed=i, magmoms=True) for i in range(3)]
    meta = [{'source_uuid': f'uuid-{i}', 'sample_type': 'aimd', 'temperature': 5000.0, 'iteration': 2,
             'composition': 'NaPO2', 'config_type': 'melt'} for i in range(3)]  # fmt: skip
    node = TrainingSetData.from_atoms(atoms, metadata=meta).store()
    path = tmp_path / f'set{suffix}'
    node.export(path)
    back = TrainingSetData.from_file(path).get_frameset()
    original = node.get_frameset()
    np.testing.assert_array_equal(back.stress, original.stress)
    np.testing.assert_array_equal(back.magmoms, original.magmoms)
    for key in ('source_uuid', 'sample_type', 'temperature', 'iteration', 'composition', 'config_type'):
        assert [m[key] for m in back.metadata] == [m[key] for m in original.metadata], key


def test_merge_wrapper_rejects_bad_input_before_storing(node_count, aiida_profile):
    from aiida import orm

    from aiida_glassml.calcfunctions.training_set import run_merge_training_sets

    before = node_count()
    with pytest.raises(FrameValidationError, match='nothing to merge'):
        run_merge_training_sets()
    with pytest.raises(FrameValidationError, match=r"only TrainingSetData can be merged, got \['Int'\]"):
        run_merge_training_sets(orm.Int(1))
    assert node_count() == before
    merged = run_merge_training_sets(TrainingSetData.from_atoms([make_atoms(seed=1)]),
                                     TrainingSetData.from_atoms([make_atoms(seed=1), make_atoms(seed=2)]))  # fmt: skip
    assert merged['training_set'].n_frames == 2 and merged['report']['n_duplicates_dropped'] == 1


def test_cached_frames_are_read_only(aiida_profile):
    node = TrainingSetData.from_atoms([make_atoms(seed=3)]).store()
    frames = node.get_frameset()
    with pytest.raises(ValueError, match='read-only'):
        frames.energy[0] = 0.0
    assert node.get_frameset().energy[0] == -7.0


def test_export_suffixes(tmp_path, aiida_profile):
    node = TrainingSetData.from_atoms([make_atoms(seed=4)])
    node.export(tmp_path / 'a.extxyz')
    node.export(tmp_path / 'a.pckl.gzip')
    assert (tmp_path / 'a.extxyz').read_text().startswith('4\n')
    assert TrainingSetData.from_file(tmp_path / 'a.pckl.gzip').n_frames == 1
