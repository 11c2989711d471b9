"""DiffusionWorkChain for real in ASE with the published NaFePO4 ACE potential (pyace), ``fast``: 3 temperatures × 2
heating variants × 2 glasses (minimised once up front, see ``ace_glasses``); the dumps stay in the remote folders
and are analysed there."""

from __future__ import annotations

import pytest
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory

from .test_diffusion_lammps import check_series

DiffusionWorkChain = WorkflowFactory('glassml.diffusion')
#: temperatures the published potential holds in a 112-atom cell over the fast schedule
ACE_TEMPERATURES = (1200.0, 1600.0, 2000.0)
ACE_OVERRIDES = {'temperatures': list(ACE_TEMPERATURES),
                 'series': {'arrhenius_t_min': 1600.0, 'conductivity_temperature': 1200.0,
                            'mobility_temperature': 1600.0}}  # fmt: skip


@pytest.fixture
def ace_potential(aiida_profile, reference_potential_yaml, reference_potential_yace):
    from aiida_glassml.data.ace_potential import AcePotentialData

    return AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)


@pytest.mark.slow
def test_ase_ace_diffusion_series(aiida_profile_clean, ace_glasses, python_code, ace_potential):
    builder = DiffusionWorkChain.get_builder_from_protocol(python_code, ace_glasses, potential=ace_potential,
                                                           protocol='fast', overrides=ACE_OVERRIDES)  # fmt: skip
    results, node = run_get_node(builder)
    check_series(results, node, ACE_TEMPERATURES)
    md_runs = [c for c in node.called if c.process_label == 'AseMDCalculation']
    assert len(md_runs) == 12
    for calc in md_runs:
        # keep_trajectory is off: the dump stays in the remote folder, where the analysis read it
        assert 'dump.extxyz' not in calc.outputs.retrieved.base.repository.list_object_names()
        assert 'dump.extxyz' in calc.outputs.remote_folder.listdir()
        assert 'trajectory' not in calc.outputs
