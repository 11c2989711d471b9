"""CHGNet's predicted magnetic moments along an MD: the ASE runner records them per dumped frame, the trajectory
carries them (`magmoms`), and the moment bins turn them into Fe oxidation states per frame. A real CHGNet 0.3.0 MD of a
28-atom NaFePO4 cell, 10 steps."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory

from aiida_glassml.md.protocol import NVT, MDProtocol

from .conftest import _conftest_of

AseMDCalculation = CalculationFactory('glassml.ase_md')


@pytest.fixture(scope='module')
def chgnet_md(python_code):
    import torch

    from aiida_glassml.data.mlip_potential import MlipPotentialData

    torch.set_num_threads(1)
    atoms = _conftest_of('md_ase').random_nafepo4(formula_units=4, seed=2)
    protocol = MDProtocol(stages=[NVT(600.0, 0.01)], timestep=0.001, thermo_interval=5, dump_interval=5, seed=4)
    builder = AseMDCalculation.get_builder()
    builder.code = python_code
    builder.structure = orm.StructureData(ase=atoms)
    builder.protocol = orm.Dict(protocol.to_dict())
    builder.potential = MlipPotentialData.chgnet().store()
    _, node = run_get_node(builder)
    return node


def test_chgnet_moments_are_recorded_per_frame(chgnet_md):
    assert chgnet_md.is_finished_ok, chgnet_md.exit_message
    trajectory = chgnet_md.outputs.trajectory
    moments = trajectory.get_array('magmoms')
    symbols = np.array(trajectory.symbols)
    assert moments.shape == (trajectory.numsteps, 28) and trajectory.numsteps == 3  # steps 0, 5, 10
    assert np.isfinite(moments).all()
    # CHGNet puts the moment on iron (high-spin Fe2+/Fe3+: 3.5-4.5 μB), next to none on P and O
    assert (np.abs(moments[:, symbols == 'Fe']) > 2.5).all()
    assert (np.abs(moments[:, symbols == 'O']) < 0.5).all()


def test_moment_bins_give_iron_oxidation_states(chgnet_md, node_count):
    from aiida_glassml.calcfunctions.analysis_structure import (
        run_trajectory_oxidation_states,
        trajectory_oxidation_parameters,
    )

    trajectory = chgnet_md.outputs.trajectory
    parameters = trajectory_oxidation_parameters(trajectory, None)  # Fe has default moment bins
    assert parameters['element'] == 'Fe'
    outputs = run_trajectory_oxidation_states(trajectory, parameters)
    summary = outputs['oxidation_states'].get_dict()
    assert summary['steps'] == [0, 5, 10]
    assert [sum(counts.values()) for counts in summary['per_frame']] == [4, 4, 4]
    assigned = summary['totals']['2'] + summary['totals']['3']
    assert assigned > 0  # CHGNet's moments fall in the Fe bins
    counts = outputs['oxidation_state_counts']
    assert counts.get_array('counts').sum() == 12
    assert counts.creator.inputs.trajectory.uuid == trajectory.uuid
    # a trajectory without moments: refused before anything is stored
    plain = orm.TrajectoryData()
    plain.set_trajectory(list(trajectory.symbols), trajectory.get_positions(), cells=trajectory.get_cells())
    before = node_count()
    with pytest.raises(ValueError, match='has no `magmoms`; run the MD with a potential that predicts'):
        run_trajectory_oxidation_states(plain, {'element': 'Fe'})
    assert node_count() == before
    assert trajectory_oxidation_parameters(plain, {}) is None  # the analysis work chain skips it
