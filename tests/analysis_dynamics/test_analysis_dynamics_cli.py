"""``aiida-glassml analyse trajectory`` on real files (LAMMPS dumps, extxyz) through click's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_glassml.analysis.dynamics import KB_EV

EA, D0 = 0.3, 5.0


def _write_dump(path, traj, columns='element', drop_last_atom_at=None):
    """LAMMPS text dump with ids in scrambled order (as MPI runs write them) and true image flags."""
    from aiida_glassml.analysis.dynamics import unwrap_positions

    box = np.diag(traj.cell)
    wrapped = np.asarray(traj.positions, dtype=float)
    images = np.rint((unwrap_positions(wrapped, traj.cell) - wrapped) / box).astype(int)
    with path.open('w') as handle:
        for f in range(traj.n_frames):
            n = traj.n_atoms - (1 if drop_last_atom_at is not None and f >= drop_last_atom_at else 0)
            handle.write(f'ITEM: TIMESTEP\n{f * 100}\nITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp pp\n')
            handle.write(''.join(f'0.0 {length}\n' for length in box))
            name = 'element' if columns == 'element' else 'type'
            handle.write(f'ITEM: ATOMS id {name} x y z ix iy iz\n')
            types = {'Fe': 1, 'Na': 2, 'O': 3, 'P': 4}
            for i in np.random.default_rng(f).permutation(n):
                x, y, z = traj.positions[f, i]
                ix, iy, iz = images[f, i]
                label = traj.symbols[i] if columns == 'element' else types[traj.symbols[i]]
                handle.write(f'{i + 1} {label} {x:.5f} {y:.5f} {z:.5f} {ix} {iy} {iz}\n')
    return path


@pytest.fixture(scope='module')
def dumps(tmp_path_factory, make_glass_trajectory):
    folder = tmp_path_factory.mktemp('dumps')
    files = {}
    for k, temperature in enumerate((700.0, 1000.0)):
        D = D0 * np.exp(-EA / (KB_EV * temperature))
        traj = make_glass_trajectory(D=D, n_frames=150, n_atoms=600, seed=10 + k)
        files[temperature] = _write_dump(folder / f'na_{int(temperature)}K.dump', traj)
    return files


def _cli():
    from aiida_glassml.cli import cli

    return cli


def test_single_dump_json(dumps):
    result = CliRunner().invoke(_cli(), ['analyse', 'trajectory', str(dumps[1000.0]), '--timestep-ps', '0.1', '-T',
                                         '1000', '--json'])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    run = data['trajectories']['na_1000K']
    expected = D0 * np.exp(-EA / (KB_EV * 1000.0))
    assert run['diffusion']['Na']['D'] == pytest.approx(expected, rel=0.2)
    assert run['diffusion']['O']['diffusive'] is False
    assert run['conductivity']['Na']['sigma_NE_S_cm'] > 0
    assert run['hops']['n_ions'] == run['counts']['Na']
    assert 'arrhenius' not in data


def test_two_temperatures_give_arrhenius_and_a_text_summary(dumps):
    args = ['analyse', 'trajectory', str(dumps[700.0]), str(dumps[1000.0]), '--timestep-ps', '0.1', '-T', '700', '-T',
            '1000', '--species', 'Na']  # fmt: skip
    result = CliRunner().invoke(_cli(), [*args, '--json'])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.stdout)['arrhenius']['Na']
    assert fit['fitted'] and fit['Ea_eV'] == pytest.approx(EA, abs=0.08)
    text = CliRunner().invoke(_cli(), args)
    assert text.exit_code == 0, text.output
    assert 'Arrhenius Na: Ea =' in text.stdout and 'D(Na) =' in text.stdout


def test_extxyz_and_type_mapped_dump(tmp_path, make_glass_trajectory):
    import ase.io
    from ase import Atoms

    traj = make_glass_trajectory(D=0.1, n_frames=40, n_atoms=300)
    frames = [Atoms(list(traj.symbols), positions=traj.positions[f], cell=traj.cell, pbc=True) for f in range(traj.n_frames)]
    ase.io.write(tmp_path / 'run.extxyz', frames, format='extxyz')
    from_xyz = CliRunner().invoke(_cli(), ['analyse', 'trajectory', str(tmp_path / 'run.extxyz'), '--timestep-ps', '0.1',
                                           '--species', 'Na', '--fit-window', '1', '3', '--json'])  # fmt: skip
    assert from_xyz.exit_code == 0, from_xyz.output
    typed = _write_dump(tmp_path / 'typed.dump', traj, columns='type')
    from_dump = CliRunner().invoke(_cli(), ['analyse', 'trajectory', str(typed), '--timestep-ps', '0.1', '--species', 'Na',
                                            '--fit-window', '1', '3', '--type-map', '1=Fe,2=Na,3=O,4=P', '--json'])  # fmt: skip
    assert from_dump.exit_code == 0, from_dump.output
    a = json.loads(from_xyz.stdout)['trajectories']['run']['diffusion']['Na']['D']
    b = json.loads(from_dump.stdout)['trajectories']['typed']['diffusion']['Na']['D']
    assert a == pytest.approx(b, rel=1e-3)
    # without the map the types cannot be named
    unnamed = CliRunner().invoke(_cli(), ['analyse', 'trajectory', str(typed), '--timestep-ps', '0.1'])
    assert unnamed.exit_code == 1
    assert 'Error:' in unnamed.stderr and 'type' in unnamed.stderr


def test_bad_input_gives_one_line_errors(tmp_path, make_glass_trajectory, dumps):
    traj = make_glass_trajectory(D=0.1, n_frames=10, n_atoms=50)
    varying = _write_dump(tmp_path / 'varying.dump', traj, drop_last_atom_at=5)
    cases = [
        (['analyse', 'trajectory', str(varying), '--timestep-ps', '0.1'], 'fixed atom count'),
        (['analyse', 'trajectory', str(dumps[700.0]), '--timestep-ps', '0.1', '--van-hove-times', '99'],
         'van Hove time 99 ps is outside the trajectory'),
        (['analyse', 'trajectory', str(dumps[700.0]), '--timestep-ps', '0.1', '-T', '700', '-T', '800'],
         'one -T/--temperature per file'),
        (['analyse', 'trajectory', str(dumps[700.0]), '--timestep-ps', '0.1', '-T', '700', '--t-min', '600'],
         'two or more temperatures'),
        (['analyse', 'trajectory', str(dumps[700.0])], 'time between stored frames'),
    ]  # fmt: skip
    for args, message in cases:
        result = CliRunner().invoke(_cli(), args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert 'Traceback' not in result.output


def test_store_runs_the_workchain_with_provenance(aiida_profile, python_code, dumps):
    from aiida.orm import Node, QueryBuilder, load_node

    args = ['analyse', 'trajectory', str(dumps[700.0]), str(dumps[1000.0]), '--timestep-ps', '0.1', '-T', '700', '-T',
            '1000', '--species', 'Na', '--store', '--json']  # fmt: skip
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    stored = data['stored']
    assert load_node(stored['workchain']).is_finished_ok
    figure, trajectory = load_node(stored['arrhenius.figure']), load_node(stored['na_700K.trajectory'])
    assert figure.filename.endswith('.png')
    query = QueryBuilder().append(Node, filters={'id': trajectory.pk}, tag='source')
    query.append(Node, with_ancestors='source', filters={'id': figure.pk})
    assert query.count() == 1
    assert data['arrhenius']['Na']['fitted']
