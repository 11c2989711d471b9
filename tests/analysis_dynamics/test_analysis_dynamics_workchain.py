"""GlassAnalysisWorkChain on the published glass and on synthetic trajectories at three temperatures: outputs,
Arrhenius fit back to the known Ea, figures with provenance back to the inputs, and bad input storing nothing."""

from __future__ import annotations

import re

import numpy as np
import pytest

EA, D0 = 0.3, 5.0  # eV, Å²/ps: the Na diffusion the synthetic trajectories are built with
TEMPERATURES = {'T600': 600.0, 'T800': 800.0, 'T1000': 1000.0}


def _d_of(temperature):
    from aiida_glassml.analysis.dynamics import KB_EV

    return D0 * np.exp(-EA / (KB_EV * temperature))


@pytest.fixture(scope='module')
def trajectory_nodes(aiida_profile, make_glass_trajectory):
    from aiida_glassml.calcfunctions.analysis import trajectory_node_from

    return {
        label: trajectory_node_from(make_glass_trajectory(D=_d_of(T), n_frames=200, n_atoms=1000, seed=k))
        for k, (label, T) in enumerate(TEMPERATURES.items())
    }


def _magnetic_training_set():
    """Two DFT-like frames whose four V atoms carry moments 0.1, 1.0, 2.0 and 1.0 μB (V5+, V4+, V3+, V4+)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_glassml.data.training_set import TrainingSetData

    frames = []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        atoms = Atoms(['V'] * 4 + ['O'] * 4, positions=rng.random((8, 3)) * 6.0, cell=[6, 6, 6], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-30.0, forces=rng.normal(size=(8, 3)),
                                           magmoms=[0.1, -1.0, 2.0, 1.0, 0, 0, 0, 0])  # fmt: skip
        frames.append(atoms)
    return TrainingSetData.from_atoms(frames)


@pytest.fixture(scope='module')
def experimental_sq(glass_atoms):
    """The model's own neutron S(Q) × 1.1 on Q = 1–15 Å⁻¹ (R_χ = 0.1/1.1 against the model)."""
    from aiida_glassml.analysis import compute_rdf, neutron_structure_factor
    from aiida_glassml.calcfunctions.analysis_structure import experimental_curve_node

    q = np.arange(0.3, 20.0 + 1e-9, 0.02)
    _, s = neutron_structure_factor(compute_rdf(glass_atoms, dr=0.02), q)
    mask = (q > 0.99) & (q < 15.01)
    return experimental_curve_node(q[mask], 1.1 * s[mask], 'S_neutron')


@pytest.fixture(scope='module')
def finished(aiida_profile, python_code, glass_atoms, trajectory_nodes, experimental_sq):
    from aiida.engine import run_get_node
    from aiida.orm import Dict, Float, StructureData

    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    inputs = {
        'experimental': experimental_sq,
        'r_chi_parameters': Dict({'quantity': 'S_neutron', 'x_range': [2.0, 12.0]}),
        'training_set': _magnetic_training_set(),
        'structure': StructureData(ase=glass_atoms),
        'network_parameters': Dict({'triplets': ['O-P-O', 'O-Fe-O', 'P-O-Fe'], 'max_ring_size': 12, 'ring_species': 'Na'}),
        'trajectories': trajectory_nodes,
        'temperatures': {label: Float(T) for label, T in TEMPERATURES.items()},
        'dynamics_parameters': Dict({
            'van_hove_times': [0.5, 5.0], 'mobility': {'species': 'Na', 'time': 5.0, 'partners': ['Fe', 'P', 'O'], 'rings': True},
            'hops': {'species': 'Na', 'hop_distance': 3.0}, 'haven': True,
        }),  # fmt: skip
    }
    results, node = run_get_node(GlassAnalysisWorkChain, **inputs)
    return results, node, inputs


def test_workchain_finishes_with_all_figures(finished):
    results, node, _ = finished
    assert node.is_finished_ok, node.exit_status
    structure = results['structure']
    for key in ('rdf_figure', 'structure_factor_figure', 'bond_angles_figure', 'ring_sizes_figure',
                'partial_structure_factors_figure', 'real_space_figure', 'r_chi_figure'):  # fmt: skip
        assert structure[key].filename.endswith('.png')
        with structure[key].open(mode='rb') as handle:
            assert handle.read(8) == b'\x89PNG\r\n\x1a\n'
    for label in TEMPERATURES:
        for key in ('msd_figure', 'van_hove_figure', 'alpha2_figure', 'mobility_rdf_figure'):
            assert results['dynamics'][label][key].filename.endswith('.png')
    assert results['arrhenius']['figure'].filename.endswith('.png')
    assert structure['r_chi']['r_chi'] == pytest.approx(0.1 / 1.1, rel=1e-9)
    assert {name for name, _, _ in structure['real_space'].get_y()} >= {'T_neutron', 'G_neutron', 'T_xray', 'G_xray'}
    assert 'S_P_O' in {name for name, _, _ in structure['partial_structure_factors'].get_y()}
    oxidation = results['oxidation']['oxidation_states'].get_dict()
    assert oxidation['totals'] == {'5': 2, '4': 4, '3': 2, 'unassigned': 0}
    reports = [log.message for log in __import__('aiida').orm.Log.collection.get_logs_for(node)]
    assert any('Ea =' in message for message in reports)
    assert any('R_chi(S_neutron) = 0.0909' in message for message in reports)
    assert any('[3/3] dynamics' in message for message in reports)


def test_workchain_fits_back_the_activation_energy(finished):
    results, _, _ = finished
    fit = results['arrhenius']['arrhenius'].get_dict()['Na']
    assert fit['fitted']
    assert fit['Ea_eV'] == pytest.approx(EA, abs=max(3 * fit['Ea_err_eV'], 0.03))
    assert 0 < fit['Ea_err_eV'] < 0.05
    for label, T in TEMPERATURES.items():
        data = results['dynamics'][label]['results'].get_dict()
        na = data['diffusion']['Na']
        assert na['diffusive'] and na['D'] == pytest.approx(_d_of(T), rel=0.15)
        assert data['diffusion']['P']['diffusive'] is False  # the vibrating host has no diffusive regime
        assert data['conductivity']['Na']['sigma_NE_S_cm'] > 0
        assert np.isfinite(data['conductivity']['Na']['haven_ratio'])
        assert data['hops']['n_ions'] == data['counts']['Na']
        assert data['hops']['rate_per_ion_ps'] >= 0
        assert data['mobility']['n_fast'] > 0 and data['mobility']['n_rings'] > 0
        mobility = results['dynamics'][label]['mobility_rdf']
        for key in ('fast_Fe', 'slow_O', 'ring_centre_fast', 'ring_centre_slow'):
            assert np.all(np.isfinite(mobility.get_array(key))), key
        van_hove = results['dynamics'][label]['van_hove']
        assert van_hove.base.attributes.get('units')['P_s'] == '1/angstrom'
        assert van_hove.get_array('P_s').shape == (2, van_hove.get_array('r').size)
        assert results['dynamics'][label]['msd'].get_y()[0][2] == 'angstrom^2'
    rings = results['structure']['rings'].base.attributes.get('size_distribution')
    assert sum(rings.values()) > 100


def test_figures_link_back_to_their_inputs(finished):
    from aiida.orm import Node, QueryBuilder

    results, _, inputs = finished

    def has_ancestor(node, ancestor):
        query = QueryBuilder().append(Node, filters={'id': ancestor.pk}, tag='source')
        query.append(Node, with_ancestors='source', filters={'id': node.pk})
        return query.count() >= 1  # one row per path; R_chi reaches the structure by two

    structure = inputs['structure']
    for key in ('rdf_figure', 'structure_factor_figure', 'bond_angles_figure', 'ring_sizes_figure',
                'partial_structure_factors_figure', 'real_space_figure', 'r_chi_figure'):  # fmt: skip
        assert has_ancestor(results['structure'][key], structure), key
    assert has_ancestor(results['structure']['r_chi_figure'], inputs['experimental'])
    assert has_ancestor(results['oxidation']['oxidation_state_counts'], inputs['training_set'])
    for label, trajectory in inputs['trajectories'].items():
        for key in ('msd_figure', 'van_hove_figure', 'mobility_rdf_figure', 'msd', 'results'):
            assert has_ancestor(results['dynamics'][label][key], trajectory), (label, key)
        assert has_ancestor(results['arrhenius']['figure'], trajectory)
    assert not has_ancestor(results['structure']['rdf_figure'], inputs['trajectories']['T600'])


@pytest.mark.parametrize(
    'case, message',
    [
        ('single_temperature', 'Arrhenius fit needs trajectories at two or more temperatures'),
        ('replicas_with_arrhenius', 'Arrhenius fit needs trajectories at two or more temperatures'),
        ('r_chi_outside_model', 'reaches outside the model S_neutron'),
        ('experimental_without_structure', '`experimental` (for R_chi) needs a `structure`'),
        ('training_set_without_magmoms', 'has no magnetic moments in any frame'),
        ('window_outside', 'van Hove time 500 ps is outside the trajectory'),
        ('missing_temperature', '`temperatures` must have one Float'),
        ('non_periodic', 'periodic'),
        ('nothing', 'nothing to analyse'),
        ('unknown_parameter', "unknown dynamics parameters ['colour']"),
    ],
)
def test_bad_input_is_rejected_before_anything_is_stored(aiida_profile, make_glass_trajectory, node_count, case, message):
    from aiida.engine import run
    from aiida.orm import Dict, Float, StructureData, XyData
    from ase import Atoms

    from aiida_glassml.calcfunctions.analysis import trajectory_node_from
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    traj = make_glass_trajectory(D=0.05, n_frames=30, n_atoms=200)
    inputs = {'trajectories': {'a': trajectory_node_from(traj)}, 'temperatures': {'a': Float(800.0)}}
    if case == 'single_temperature':
        inputs['arrhenius_parameters'] = Dict({'t_min': 500.0})
    elif case == 'replicas_with_arrhenius':
        inputs['trajectories']['b'] = trajectory_node_from(traj)
        inputs['temperatures']['b'] = Float(800.0)
        inputs['arrhenius_parameters'] = Dict({})
    elif case == 'r_chi_outside_model':
        cell = np.eye(3) * 12.0
        inputs = {'structure': StructureData(ase=Atoms('NaPO', positions=np.eye(3) * 2, cell=cell, pbc=True)),
                  'experimental': XyData(), 'r_chi_parameters': Dict({'x_range': [1.0, 30.0]})}  # fmt: skip
        inputs['experimental'].set_x(np.linspace(0.5, 40, 100), 'Q', '1/angstrom')
        inputs['experimental'].set_y(np.ones(100), 'S_neutron', 'dimensionless')
    elif case == 'experimental_without_structure':
        inputs['experimental'] = XyData()
    elif case == 'training_set_without_magmoms':
        from ase.calculators.singlepoint import SinglePointCalculator

        from aiida_glassml.data.training_set import TrainingSetData

        atoms = Atoms('VO', positions=[[0, 0, 0], [1.6, 0, 0]], cell=[5, 5, 5], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((2, 3)))
        inputs = {'training_set': TrainingSetData.from_atoms([atoms])}
    elif case == 'window_outside':
        inputs['dynamics_parameters'] = Dict({'van_hove_times': [500.0]})
    elif case == 'missing_temperature':
        inputs['temperatures'] = {'b': Float(800.0)}
    elif case == 'non_periodic':
        inputs = {'structure': StructureData(ase=Atoms('NaPO', positions=np.eye(3) * 2, cell=[10, 10, 10], pbc=False))}
    elif case == 'nothing':
        inputs = {}
    elif case == 'unknown_parameter':
        inputs['dynamics_parameters'] = Dict({'colour': 'red'})
    before = node_count()
    with pytest.raises(ValueError, match=re.escape(message)):
        run(GlassAnalysisWorkChain, **inputs)
    assert node_count() == before


def test_replicas_at_one_temperature_run_without_an_arrhenius_fit(aiida_profile, python_code, make_glass_trajectory):
    from aiida.engine import run_get_node
    from aiida.orm import Float

    from aiida_glassml.calcfunctions.analysis import trajectory_node_from
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    replicas = {f'r{k}': trajectory_node_from(make_glass_trajectory(D=0.05, n_frames=40, n_atoms=200, seed=k))
                for k in range(2)}  # fmt: skip
    results, node = run_get_node(GlassAnalysisWorkChain, trajectories=replicas,
                                 temperatures={label: Float(800.0) for label in replicas})  # fmt: skip
    assert node.is_finished_ok, node.exit_status
    assert set(results['dynamics']) == set(replicas) and 'arrhenius' not in results
    for label in replicas:
        assert results['dynamics'][label]['results']['temperature'] == 800.0
        assert np.isfinite(results['dynamics'][label]['msd'].get_y()[0][1]).all()


def test_builder_from_protocol(aiida_profile, glass_atoms, trajectory_nodes):
    from aiida.orm import StructureData

    from aiida_glassml.protocols import ProtocolError
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    assert set(GlassAnalysisWorkChain.get_available_protocols()) == {'fast', 'balanced', 'stringent'}
    builder = GlassAnalysisWorkChain.get_builder_from_protocol(
        structure=StructureData(ase=glass_atoms), trajectories=trajectory_nodes, temperatures=TEMPERATURES,
        protocol='stringent', overrides={'arrhenius_parameters': {'t_min': 700.0}},
    )  # fmt: skip
    assert builder.network_parameters['max_ring_size'] == 24
    assert builder.dynamics_parameters['distinct_van_hove'] is True
    assert builder.arrhenius_parameters['t_min'] == 700.0
    assert {k: v.value for k, v in builder.temperatures.items()} == TEMPERATURES
    only_structure = GlassAnalysisWorkChain.get_builder_from_protocol(structure=StructureData(ase=glass_atoms))
    assert 'trajectories' not in only_structure or not only_structure.trajectories
    with pytest.raises(ProtocolError, match='unknown override key `dynamics_parameters.hopz`'):
        GlassAnalysisWorkChain.get_builder_from_protocol(trajectories=trajectory_nodes, temperatures=TEMPERATURES,
                                                         overrides={'dynamics_parameters': {'hopz': {}}})  # fmt: skip
