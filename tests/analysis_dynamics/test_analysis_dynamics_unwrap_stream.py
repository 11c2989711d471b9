"""Decimated wrapped trajectories (image flags, or a clear error without them) and streaming into float32 memory
maps (dump files and TrajectoryData) giving the same results as the in-memory path."""

from __future__ import annotations

import gc
import json
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_glassml.analysis import dynamics as dyn

BOX = 8.0  # Å, cubic
D_TRUE = 1.0  # Å²/ps
DENSE_DT, STRIDE = 0.01, 200  # ps, frames kept: every 200th (2 ps apart, steps ~2 Å per axis, half box 4 Å)


@pytest.fixture(scope='module')
def decimated():
    """Unwrapped, wrapped and image-flag positions of 40 Na and 40 O random walkers, decimated by ``STRIDE``."""
    rng = np.random.default_rng(7)
    n_dense, n_atoms = 60 * STRIDE, 80
    steps = rng.normal(scale=np.sqrt(2 * D_TRUE * DENSE_DT), size=(n_dense, n_atoms, 3))
    true = rng.random((n_atoms, 3)) * BOX + np.cumsum(steps, axis=0)
    true = true[::STRIDE].astype(np.float32).astype(float)  # float32-exact, as stored in a dump or a memmap
    images = np.floor(true / BOX).astype(np.int32)
    wrapped = true - images * BOX
    symbols = np.array(['Na'] * 40 + ['O'] * 40)
    times = np.arange(len(true)) * DENSE_DT * STRIDE
    return {'true': true, 'wrapped': wrapped, 'images': images, 'symbols': symbols, 'times': times}


def _reference_msd(data) -> dict:
    traj = dyn.Trajectory(data['true'], data['symbols'], data['times'], cell=np.eye(3) * BOX, wrapped=False)
    return dyn.mean_square_displacement(traj).msd


def _node(data, images: bool):
    from aiida.orm import TrajectoryData

    node = TrajectoryData()
    n_frames = len(data['times'])
    node.set_trajectory(symbols=data['symbols'].tolist(), positions=data['wrapped'], stepids=np.arange(n_frames),
                        cells=np.repeat(np.eye(3)[None] * BOX, n_frames, axis=0), times=data['times'],
                        pbc=(True, True, True))  # fmt: skip
    if images:
        node.set_array('images', data['images'])
    node.base.attributes.set('wrapped', True)
    return node


def test_decimated_trajectory_data_is_unwrapped_with_its_image_flags(aiida_profile, decimated):
    from aiida_glassml.calcfunctions.analysis import trajectory_from_node

    traj = trajectory_from_node(_node(decimated, images=True))
    assert traj.images is not None and traj.positions.dtype == np.float32
    result = dyn.mean_square_displacement(traj)
    reference = _reference_msd(decimated)
    for name in ('Na', 'O'):
        np.testing.assert_allclose(result.msd[name], reference[name], rtol=1e-5, atol=1e-3)
    # and the physics: MSD = 6 D t for these free random walkers (80 atoms, so loose)
    fit = dyn.fit_diffusion(result.times, result.msd['Na'], window=(10.0, 40.0))
    assert fit.D == pytest.approx(D_TRUE, rel=0.35)


def test_decimated_wrapped_trajectory_without_images_is_refused(aiida_profile, decimated, node_count):
    from aiida_glassml.calcfunctions.analysis import trajectory_from_node, validate_dynamics_parameters

    node = _node(decimated, images=False)
    with pytest.raises(dyn.UnwrapError, match=r'half the cell is 4\.0 Å.*Store image flags.*denser trajectory'):
        dyn.mean_square_displacement(trajectory_from_node(node))
    before = node_count()
    with pytest.raises(dyn.UnwrapError, match='minimum-image unwrapping cannot tell'):
        validate_dynamics_parameters(node, {'temperature': 300.0})
    assert node_count() == before


def _write_dump(path: pathlib.Path, data) -> pathlib.Path:
    with path.open('w') as handle:
        for f, frame in enumerate(data['wrapped']):
            handle.write(f'ITEM: TIMESTEP\n{f * STRIDE}\nITEM: NUMBER OF ATOMS\n{len(frame)}\n')
            handle.write('ITEM: BOX BOUNDS pp pp pp\n' + f'0.0 {BOX}\n' * 3 + 'ITEM: ATOMS id element x y z ix iy iz\n')
            for i, ((x, y, z), (ix, iy, iz)) in enumerate(zip(frame, data['images'][f])):
                handle.write(f'{i + 1} {data["symbols"][i]} {x:.6f} {y:.6f} {z:.6f} {ix} {iy} {iz}\n')
    return path


def test_memmap_reading_gives_the_in_memory_results(tmp_path, decimated):
    dump = _write_dump(tmp_path / 'walk.dump', decimated)
    in_memory = dyn.read_trajectory(dump, timestep_ps=DENSE_DT * STRIDE, memmap=False)
    streamed = dyn.read_trajectory(dump, timestep_ps=DENSE_DT * STRIDE, memmap=True)
    automatic = dyn.read_trajectory(dump, timestep_ps=DENSE_DT * STRIDE, memmap_threshold_bytes=1)
    assert not isinstance(in_memory.positions, np.memmap)
    for traj in (streamed, automatic):
        assert isinstance(traj.positions, np.memmap) and traj.positions.dtype == np.float32
        assert isinstance(traj.images, np.memmap)
        np.testing.assert_array_equal(traj.positions, in_memory.positions)
        np.testing.assert_array_equal(traj.images, in_memory.images)
    expected = dyn.analyse_dynamics(in_memory, van_hove_times=[4.0])
    got = dyn.analyse_dynamics(streamed, van_hove_times=[4.0])
    for name in ('Na', 'O'):
        np.testing.assert_array_equal(got.msd[name], expected.msd[name])
        np.testing.assert_array_equal(got.van_hove_self[name], expected.van_hove_self[name])
        np.testing.assert_allclose(got.msd[name], _reference_msd(decimated)[name], rtol=1e-4, atol=1e-3)
    folder = pathlib.Path(streamed.positions.filename).parent
    assert folder.is_dir()
    del streamed, got
    gc.collect()
    assert not folder.exists()  # the temporary memmap folder goes with the Trajectory


def test_cli_memmap_matches_in_memory(tmp_path, decimated):
    from aiida_glassml.cli import cli

    dump = _write_dump(tmp_path / 'walk.dump', decimated)
    outputs = {}
    for flag in ('--memmap', '--no-memmap'):
        result = CliRunner().invoke(cli, ['analyse', 'trajectory', str(dump), '--timestep-ps', str(DENSE_DT * STRIDE),
                                          '-T', '300', '--no-hops', '--json', flag])  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs[flag] = json.loads(result.stdout)
    assert outputs['--memmap'] == outputs['--no-memmap']
    assert outputs['--memmap']['trajectories']['walk']['diffusion']['Na']['D'] > 0


def test_trajectory_from_node_streams_float32_without_a_float64_copy(aiida_profile, decimated):
    from aiida_glassml.calcfunctions.analysis import trajectory_from_node

    node = _node(decimated, images=True).store()
    in_memory = trajectory_from_node(node, memmap=False)
    streamed = trajectory_from_node(node, memmap_threshold_bytes=1)
    assert 'positions' not in node._cached_arrays  # nothing float64 left behind in the node's cache
    assert in_memory.positions.dtype == np.float32 and not isinstance(in_memory.positions, np.memmap)
    assert isinstance(streamed.positions, np.memmap) and streamed.images.dtype == np.int32
    np.testing.assert_array_equal(streamed.positions, np.asarray(decimated['wrapped'], dtype=np.float32))
    np.testing.assert_array_equal(streamed.images, decimated['images'])
    a, b = dyn.mean_square_displacement(in_memory), dyn.mean_square_displacement(streamed)
    np.testing.assert_array_equal(a.msd['Na'], b.msd['Na'])
