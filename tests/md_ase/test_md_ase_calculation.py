"""AseMDCalculation: real pyace MD with the published NaFePO4 ACE potential, a real gamma halt, any ASE calculator,
and bad input refused before anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.md import outputs
from aiida_glassml.md.protocol import NVT, GammaTracking, InstantTemperature, MDProtocol, Minimize, Ramp

AseMDCalculation = CalculationFactory('glassml.ase_md')



def _builder(code, structure, protocol: MDProtocol, **inputs):
    builder = AseMDCalculation.get_builder()
    builder.code = code
    builder.structure = structure
    builder.protocol = orm.Dict(protocol.to_dict())
    for key, value in inputs.items():
        builder[key] = value
    return builder


def test_ace_md_writes_the_shared_layout(python_code, ace_potential, nafepo4_cell):
    """Minimise, hold, heat and cool 112 atoms with gamma tracking: every shared output is there and consistent."""
    protocol = MDProtocol(
        stages=[Minimize(maxiter=50), NVT(600.0, 0.02), Ramp(600.0, 300.0, 15000.0, ensemble='npt')],
        timestep=0.001, thermo_interval=5, dump_interval=10, seed=7,
        gamma=GammaTracking(interval=5, gamma_lo=2.5, gamma_hi=30.0),
    )  # fmt: skip
    builder = _builder(python_code, orm.StructureData(ase=nafepo4_cell), protocol, potential=ace_potential)
    results, node = run_get_node(builder)

    assert node.exit_status == 0, node.exit_message
    assert set(results) >= {'thermo', 'trajectory', 'structure', 'gamma', 'results', 'retrieved'}
    summary = results['results'].get_dict()
    assert summary['stop_reason'] == 'completed'
    assert summary['engine'] == 'ase'
    assert summary['n_steps'] == summary['n_steps_requested'] == protocol.total_steps == 40
    thermo = results['thermo']
    assert set(thermo.get_arraynames()) == set(outputs.THERMO_ARRAYS)
    assert thermo.get_array('step').tolist() == list(range(0, 41, 5))
    assert np.allclose(thermo.get_array('time'), thermo.get_array('step') * 0.001)
    density = thermo.get_array('density')
    assert 2.0 < density[0] < 4.0  # built at the glass density, 3.07 g/cm³
    assert np.isclose(summary['final_density'], density[-1], rtol=1e-6)
    assert np.all(np.isfinite(thermo.get_array('pressure')))
    # the NPT ramp changed the volume, the NVT hold did not
    volume = thermo.get_array('volume')
    assert np.allclose(volume[:5], volume[0]) and not np.isclose(volume[-1], volume[0])
    gamma = results['gamma']
    assert gamma.get_array('step').tolist() == list(range(0, 41, 5))
    assert 0.5 < gamma.get_array('max_gamma').max() < 30.0
    assert summary['max_gamma'] == pytest.approx(gamma.get_array('max_gamma').max())
    trajectory = results['trajectory']
    assert trajectory.get_stepids().tolist() == [0, 10, 20, 30, 40]
    assert trajectory.get_positions().shape == (5, len(nafepo4_cell), 3)
    assert results['structure'].get_ase().get_chemical_formula() == nafepo4_cell.get_chemical_formula()
    assert summary['full_trajectory_file'] in results['retrieved'].base.repository.list_object_names()


def test_gamma_halt_stops_the_run_and_says_why(python_code, ace_potential, nafepo4_cell):
    """An absurd gamma_hi of 1.5 halts a 3000 K run; exit status 350 and stop_reason say so, outputs attached."""
    protocol = MDProtocol(
        stages=[Minimize(maxiter=50), InstantTemperature(3000.0), NVT(3000.0, 0.5)], timestep=0.001, thermo_interval=10, dump_interval=0,
        seed=3, gamma=GammaTracking(interval=2, gamma_lo=1.2, gamma_hi=1.5),
    )  # fmt: skip
    builder = _builder(python_code, orm.StructureData(ase=nafepo4_cell), protocol, potential=ace_potential)
    results, node = run_get_node(builder)

    assert node.exit_status == AseMDCalculation.exit_codes.ERROR_GAMMA_HALT.status == 350
    assert 'gamma_hi 1.5' in node.exit_message
    summary = results['results'].get_dict()
    assert summary['stop_reason'] == 'gamma_halt'
    assert 0 < summary['n_steps'] < protocol.total_steps
    assert summary['max_gamma'] >= 1.5
    max_gamma = results['gamma'].get_array('max_gamma')
    assert max_gamma[-1] >= 1.5 and np.all(max_gamma[:-1] < 1.5)
    saved = results['extrapolative_trajectory']
    assert np.all(saved.get_array('max_gamma') >= 1.2)
    assert saved.get_stepids()[-1] == summary['n_steps']
    assert results['thermo'].get_array('step')[-1] == summary['n_steps']


def test_any_ase_calculator_by_import_path(python_code, aiida_profile):
    """EMT on fcc Cu through `calculator`: same layout, no gamma outputs."""
    from ase.build import bulk

    protocol = MDProtocol(stages=[NVT(500.0, 0.02)], timestep=0.002, thermo_interval=2, dump_interval=5, seed=5,
                          thermostat='langevin')  # fmt: skip
    structure = orm.StructureData(ase=bulk('Cu', cubic=True).repeat(2))
    calculator = orm.Dict({'name': 'ase.calculators.emt:EMT', 'kwargs': {}})
    results, node = run_get_node(_builder(python_code, structure, protocol, calculator=calculator))

    assert node.exit_status == 0, node.exit_message
    assert 'gamma' not in results and 'extrapolative_trajectory' not in results
    assert results['thermo'].get_array('step').tolist() == list(range(0, 11, 2))
    assert results['results']['engine_version'].endswith('ase.calculators.emt.EMT')
    assert results['trajectory'].numsteps == 3
    # the CalcJob wrote the script it ran, and the results say which versions ran it
    from importlib.metadata import version

    script = node.base.repository.get_object_content('run_md.py')
    assert 'from aiida_glassml.md.ase_runner import main' in script and "main(['input.json'])" in script
    versions = results['results']['versions']
    assert versions['aiida-glassml'] == version('aiida-glassml') and versions['ase'] == version('ase')
    assert versions['pyace'] == version('python-ace')


def test_potential_not_covering_structure_is_refused(python_code, ace_potential, nafepo4_cell, node_count):
    atoms = nafepo4_cell.copy()
    atoms[0].symbol = 'Li'
    protocol = MDProtocol(stages=[NVT(300.0, 0.01)])
    before = node_count()
    with pytest.raises(ValueError, match=r"structure also contains \['Li'\]; fit or choose a potential"):
        run_get_node(_builder(python_code, orm.StructureData(ase=atoms), protocol, potential=ace_potential))
    assert node_count() == before


def test_gamma_tracking_without_active_set_is_refused(python_code, reference_potential_yaml, nafepo4_cell, node_count):
    potential = AcePotentialData.get_or_create(reference_potential_yaml)
    protocol = MDProtocol(stages=[NVT(300.0, 0.01)], gamma=GammaTracking())
    before = node_count()
    with pytest.raises(ValueError, match='no active set.*pace_activeset'):
        run_get_node(_builder(python_code, orm.StructureData(ase=nafepo4_cell), protocol, potential=potential))
    assert node_count() == before


def test_unknown_calculator_is_refused(python_code, nafepo4_cell, node_count):
    protocol = MDProtocol(stages=[NVT(300.0, 0.01)])
    before = node_count()
    with pytest.raises(ValueError, match='cannot import ASE calculator.*module:Class'):
        run_get_node(_builder(python_code, orm.StructureData(ase=nafepo4_cell), protocol,
                              calculator=orm.Dict({'name': 'ase.calculators.nope:Nope'})))  # fmt: skip
    assert node_count() == before
