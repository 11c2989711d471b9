"""Bad DiffusionWorkChain input is refused with one clear line before anything is stored."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory

from aiida_glassml.data.classical_potential import ClassicalPotentialData

DiffusionWorkChain = WorkflowFactory('glassml.diffusion')


@pytest.fixture
def builder(aiida_profile_clean, glasses, lammps_code, python_code):
    def factory(overrides=None, potential='bmp', settings=None):
        return DiffusionWorkChain.get_builder_from_protocol(
            lammps_code, glasses, potential=ClassicalPotentialData.from_library(potential), engine='lammps',
            protocol='fast', overrides=overrides, analysis_code=python_code, settings=settings)

    return factory


@pytest.mark.parametrize(('overrides', 'match'), [
    ({'temperatures': [1500.0, -300.0]}, 'must be a non-empty list of positive numbers'),
    ({'temperatures': [1500.0, 0.0]}, 'must be a non-empty list of positive numbers'),
    ({'schedule': {'heating_rate': 0.0}}, '`heating_rate` must be positive'),
    ({'schedule': {'heating_rate': -1.0}}, '`heating_rate` must be positive'),
    ({'schedule': {'equilibration_time': 0.0}}, '`equilibration_time` must be positive'),
    ({'schedule': {'production_time': -0.4}}, '`production_time` must be positive'),
    ({'md': {'timestep': 0.0}}, '`timestep` must be positive'),
    ({'variants': ['nvt', 'nph']}, 'distinct heating variants'),
    ({'analysis': {'van_hove_time': 5.0}}, '`analysis.van_hove_time` .* is longer than the production'),
    ({'series': {'conductivity_temperature': 900.0}}, 'is not one of the temperatures'),
    ({'series': {'arrhenius_t_min': 2400.0}}, 'leaves fewer than two temperatures'),
    ({'md': {'dump_interval': 200}}, 'holds 2 dumped frame'),
])  # fmt: skip
def test_bad_schedule_or_analysis_stores_nothing(builder, node_count, overrides, match):
    before = node_count()
    with pytest.raises(ValueError, match=match):
        run_get_node(builder(overrides))
    assert node_count() == before


def test_potential_missing_an_element_of_the_glass_stores_nothing(builder, node_count):
    before = node_count()
    with pytest.raises(ValueError, match=r"glass 'replica_0' also contains \['Fe'\]"):
        run_get_node(builder(potential='teter'))
    assert node_count() == before


def test_kokkos_gpu_request_without_gpu_resources_stores_nothing(builder, node_count):
    before = node_count()
    with pytest.raises(ValueError, match='no GPU resource'):
        run_get_node(builder(settings={'kokkos': True}))
    assert node_count() == before


def test_kokkos_from_the_protocol_requests_the_gpus(builder):
    """The cluster set-up: Kokkos on one GPU per run, the scheduler request made by LammpsMDCalculation."""
    built = builder({'lammps': {'kokkos': True, 'gpus': 2}})
    assert built.lammps.md.settings.get_dict() == {'kokkos': True, 'gpus': 2}
    from aiida_glassml.workflows.diffusion import validate_inputs

    assert validate_inputs(built._inputs(prune=True)) is None


def test_no_glass_stores_nothing(builder, node_count):
    built = builder()
    built.structures = {}
    before = node_count()
    with pytest.raises(ValueError, match='`structures` is empty'):
        run_get_node(built)
    assert node_count() == before
