"""DiffusionWorkChain with the published ACE potential in a real ML-PACE LAMMPS (``fast``): 3 temperatures × 2
heating variants × 2 glasses. Skips without an ML-PACE LAMMPS unless GLASSML_REQUIRE_ALL=1."""

from __future__ import annotations

import pytest
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory

from .test_diffusion_ase import ACE_OVERRIDES, ACE_TEMPERATURES
from .test_diffusion_lammps import check_dumps_left_remote, check_series

DiffusionWorkChain = WorkflowFactory('glassml.diffusion')


@pytest.mark.slow
def test_lammps_ace_diffusion_series(aiida_profile_clean, ace_glasses, lammps_pace_code, python_code,
                                     reference_potential_yaml, reference_potential_yace):  # fmt: skip
    from aiida_glassml.data.ace_potential import AcePotentialData

    potential = AcePotentialData.get_or_create(reference_potential_yaml, yace=reference_potential_yace)
    builder = DiffusionWorkChain.get_builder_from_protocol(
        lammps_pace_code, ace_glasses, potential=potential, engine='lammps', protocol='fast', overrides=ACE_OVERRIDES,
        analysis_code=python_code, options={'withmpi': False})
    results, node = run_get_node(builder)
    check_series(results, node, ACE_TEMPERATURES)
    calcs = [c for c in node.called_descendants if c.process_label == 'LammpsMDCalculation']
    assert len(calcs) == 12 and all('pair_style pace' in c.base.repository.get_object_content('input.in')
                                    for c in calcs)  # fmt: skip
    check_dumps_left_remote(node)
