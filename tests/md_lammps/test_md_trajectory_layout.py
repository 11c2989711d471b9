"""The stored trajectory has one layout for both engines: positions wrapped into the cell, integer ``images`` and
``wrapped=True``, so ``unwrapped = positions + images @ cell`` is a continuous path usable for dynamics (MSD, hops)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory

from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.md import outputs
from aiida_glassml.md import protocol as md
from aiida_glassml.structures.packing import random_packing

LammpsMDCalculation = CalculationFactory('glassml.lammps_md')
AseMDCalculation = CalculationFactory('glassml.ase_md')


def _nafepo4(formula_units: int = 16) -> orm.StructureData:
    from ase import Atoms

    symbols = ['Na', 'Fe', 'P', 'O', 'O', 'O', 'O'] * formula_units
    length = (Atoms(symbols).get_masses().sum() * 1.66053906660 / 3.0) ** (1 / 3)
    cell = np.eye(3) * length
    positions = random_packing(symbols, cell, seed=7, min_distance=1.7)
    return orm.StructureData(ase=Atoms(symbols, positions=positions, cell=cell, pbc=True))


def _hot_protocol(temperature: float, steps: int, timestep: float) -> md.MDProtocol:
    return md.MDProtocol([md.NVT(temperature, steps * timestep)], timestep=timestep, thermo_interval=10,
                         dump_interval=10, seed=99, thermostat='langevin', tdamp=0.05).validate()  # fmt: skip


def _layout(trajectory: orm.TrajectoryData) -> dict:
    return {
        'arrays': {name: (trajectory.get_array(name).dtype.kind, trajectory.get_array(name).ndim)
                   for name in trajectory.get_arraynames() if name != 'symbols'},  # fmt: skip
        'wrapped': trajectory.base.attributes.get('wrapped'),
        'time_unit': trajectory.base.attributes.get('time_unit'),
        'pbc': tuple(trajectory.base.attributes.get('pbc')),
    }


def _check_unwrapping(trajectory: orm.TrajectoryData, tolerance: float) -> int:
    """Wrapped positions lie in the cell (within ``tolerance`` Å), and the unwrapped path has no jumps; returns how
    many atoms crossed a boundary."""
    positions, cells, images = trajectory.get_positions(), trajectory.get_cells(), trajectory.get_array('images')
    lengths = np.array([np.diag(cell) for cell in cells])
    assert np.all(positions > -tolerance) and np.all(positions < lengths[:, None, :] + tolerance)
    unwrapped = outputs.unwrap(positions, images, cells)
    assert np.allclose(unwrapped - positions, np.einsum('fai,fij->faj', images, cells))
    steps = np.linalg.norm(np.diff(unwrapped, axis=0), axis=-1)
    assert steps.max() < 0.25 * lengths.min()  # continuous: no jump by a cell vector
    wrapped_steps = np.linalg.norm(np.diff(positions, axis=0), axis=-1)
    crossed = int(np.any(images != images[0], axis=(0, 2)).sum())
    if crossed:  # where an atom crossed, the wrapped path jumps and the unwrapped one does not
        assert wrapped_steps.max() > 0.5 * lengths.min()
    return crossed


@pytest.mark.slow
def test_ase_and_lammps_trajectories_have_the_same_layout(aiida_profile_clean, installed_code):
    from ase.build import bulk

    lammps = {
        'code': installed_code('lmp', 'glassml.lammps_md', label='lammps'),
        'structure': _nafepo4(),
        'potential': ClassicalPotentialData.from_library('bmp'),
        'protocol': orm.Dict(_hot_protocol(2500.0, 300, 0.001).to_dict()),
        'metadata': {'options': {'withmpi': False}},
    }
    results_lammps, node = run_get_node(LammpsMDCalculation, **lammps)
    assert node.exit_status == 0, node.exit_message

    copper = orm.StructureData(ase=bulk('Cu', cubic=True).repeat(3))
    ase = {
        'code': installed_code('python', 'glassml.ase_md', label='glassml-python'),
        'structure': copper,
        'calculator': orm.Dict({'name': 'ase.calculators.emt:EMT', 'kwargs': {}}),
        'protocol': orm.Dict(_hot_protocol(1500.0, 100, 0.002).to_dict()),
    }
    results_ase, node = run_get_node(AseMDCalculation, **ase)
    assert node.exit_status == 0, node.exit_message

    traj_lammps, traj_ase = results_lammps['trajectory'], results_ase['trajectory']
    assert _layout(traj_lammps) == _layout(traj_ase)
    assert _layout(traj_ase)['wrapped'] is True and _layout(traj_ase)['arrays']['images'] == ('i', 3)
    # LAMMPS re-wraps atoms only when it rebuilds neighbour lists: up to half the 2 Å skin outside the box
    assert _check_unwrapping(traj_lammps, tolerance=1.0) > 0
    assert _check_unwrapping(traj_ase, tolerance=1e-9) > 0  # atoms of the fcc lattice sit on the cell faces


def test_wrap_with_images_round_trips_in_a_triclinic_cell():
    rng = np.random.default_rng(0)
    cell = np.array([[10.0, 0.0, 0.0], [3.0, 9.0, 0.0], [-2.0, 1.5, 11.0]])
    unwrapped = rng.normal(scale=25.0, size=(50, 3))
    wrapped, images = outputs.wrap_with_images(unwrapped, cell)
    fractional = wrapped @ np.linalg.inv(cell)
    assert images.dtype == np.int32 and np.all((fractional >= 0) & (fractional < 1))
    assert np.allclose(outputs.unwrap(wrapped, images, cell), unwrapped)
