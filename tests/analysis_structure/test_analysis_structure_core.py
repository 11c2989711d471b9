"""Analytic checks of g(r), S(Q), coordination, angles, Qⁿ, bridging, rings and their error handling."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from aiida_glassml.analysis import (
    NonPeriodicCellError,
    bond_angle_distribution,
    bond_angles,
    bond_graph,
    bridging_statistics,
    compute_rdf,
    coordination_distribution,
    coordination_numbers,
    default_cutoffs,
    density,
    edge_sharing,
    guttman_rings,
    neighbor_pairs,
    neutron_structure_factor,
    oxidation_states_from_magmoms,
    pair_key,
    partial_structure_factors,
    qn_conventions,
    qn_speciation,
    r_chi,
    real_space_functions,
    ring_centre_rdf,
    tetrahedral_order,
    xray_structure_factor,
)
from aiida_glassml.analysis.errors import AnalysisInputError

from .conftest import tetrahedron


@pytest.fixture(scope='module')
def ideal_gas() -> Atoms:
    rng = np.random.default_rng(7)
    n = 3000
    return Atoms(['Na'] * (n // 2) + ['O'] * (n // 2), positions=rng.uniform(0, 25.0, (n, 3)), cell=[25.0] * 3, pbc=True)


def test_ideal_gas_gr_and_sq_tend_to_one(ideal_gas):
    rdf = compute_rdf(ideal_gas, dr=0.05)
    assert rdf.edges[-1] == pytest.approx(12.5)
    mask = rdf.r > 2.0
    for key, g in rdf.partials().items():
        assert abs(g[mask].mean() - 1.0) < 0.01, key
        assert np.abs(g[mask] - 1.0).max() < 0.25, key
    # running coordination of an ideal gas is ρ_b 4π r³/3
    n_r = rdf.running_coordination('Na', 'O')
    assert n_r[-1] == pytest.approx(1500 / 25.0**3 * 4 / 3 * np.pi * 12.5**3, rel=0.02)
    for lorch in (False, True):
        q, s = neutron_structure_factor(rdf, lorch=lorch)
        assert np.abs(s[q > 2.0] - 1.0).mean() < 0.02
        _, sx = xray_structure_factor(rdf, q, lorch=lorch)
        assert np.abs(sx[q > 2.0] - 1.0).mean() < 0.02
    functions = real_space_functions(rdf, 'neutron')
    assert np.abs(functions['G'][mask]).mean() < 0.05 * np.abs(functions['T'][mask]).mean()


def test_fcc_coordination_is_twelve_in_orthorhombic_and_triclinic_cells():
    cubic = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(5)
    rdf = compute_rdf(cubic, dr=0.01)
    cutoffs = default_cutoffs(rdf, ['Cu-Cu'])
    assert 2.55 < cutoffs['Cu-Cu'] < 3.6  # between first (2.55 Å) and second (3.6 Å) shells
    assert coordination_numbers(bond_graph(cubic, cutoffs)) == {'Cu': {'Cu': 12.0}}
    assert coordination_distribution(bond_graph(cubic, cutoffs), 'Cu', 'Cu') == {12: 1.0}
    triclinic = bulk('Cu', 'fcc', a=3.6).repeat(6)  # primitive cell: ASE neighbour-list fallback
    assert not np.allclose(triclinic.cell, np.diag(np.diag(triclinic.cell)))
    assert coordination_numbers(bond_graph(triclinic, cutoffs))['Cu']['Cu'] == 12.0
    assert len(neighbor_pairs(cubic, 3.0)) == 6 * len(cubic)
    assert density(cubic) == pytest.approx(4 * 63.546 / 3.6**3 * 1.66053906660, rel=1e-3)


def test_fcc_partial_structure_factor_has_bragg_peak_at_111():
    crystal = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(6)
    q, partials = partial_structure_factors(compute_rdf(crystal, dr=0.01), lorch=True)
    peak = q[np.argmax(partials['Cu-Cu'])]
    assert peak == pytest.approx(2 * np.pi * np.sqrt(3) / 3.6, abs=0.1)


def test_tetrahedral_order_angles_and_coordination_of_ideal_tetrahedra():
    centres = np.array([[5.0, 5.0, 5.0], [12.0, 5.0, 5.0]])
    positions = np.concatenate([centres, tetrahedron(centres[0]), tetrahedron(centres[1])])
    atoms = Atoms(['P', 'P'] + ['O'] * 8, positions=positions, cell=[20.0] * 3, pbc=True)
    assert tetrahedral_order(atoms, 'P', 'O') == pytest.approx([1.0, 1.0])
    graph = bond_graph(atoms, {'P-O': 2.0})
    assert bond_angles(graph, ('O', 'P', 'O')) == pytest.approx([np.degrees(np.arccos(-1 / 3))] * 12)
    centres_deg, density_ = bond_angle_distribution(graph, 'O-P-O')
    assert centres_deg[np.argmax(density_)] == pytest.approx(109.5, abs=0.6)
    assert density_.sum() * 1.0 == pytest.approx(1.0)
    assert coordination_numbers(graph) == {'P': {'O': 4.0}, 'O': {'P': 1.0}}


def _chain(middle: str) -> Atoms:
    """Three tetrahedra along x sharing corners: P–O–{middle}–O–P, terminal O elsewhere."""
    symbols, positions = [], []
    for k, centre_symbol in enumerate(['P', middle, 'P']):
        centre = np.array([5.0 + 3.0 * k, 10.0, 10.0])
        symbols.append(centre_symbol)
        positions.append(centre)
        symbols += ['O', 'O']
        positions += [centre + [0, 1.5, 0], centre + [0, -1.5, 0]]
        if k < 2:
            symbols.append('O')
            positions.append(centre + [1.5, 0, 0])  # bridging O to the next centre
    symbols += ['O', 'O']
    positions += [[3.5, 10.0, 10.0], [12.5, 10.0, 10.0]]
    return Atoms(symbols, positions=positions, cell=[25.0] * 3, pbc=True)


def test_qn_and_bridging_on_a_hand_built_chain():
    chain = _chain('P')
    graph = bond_graph(chain, {'P-O': 1.8})
    assert qn_speciation(graph, ('P',), ('O',)) == {'P': {1: pytest.approx(2 / 3), 2: pytest.approx(1 / 3)}}
    assert qn_speciation(graph, ('P',), ('S',)) == {'P': {0: 1.0}}  # no bridging S
    assert bridging_statistics(graph, ('P',), ('O',)) == {'P-O-P': pytest.approx(2 / 3)}

    mixed = _chain('Fe')
    graph = bond_graph(mixed, {'P-O': 1.8, 'Fe-O': 1.8})
    stats = bridging_statistics(graph, ('P', 'Fe'), ('O',))
    # each P has one P–O bond whose O also bonds Fe; the Fe has two Fe–O bonds whose O also bonds P
    assert stats == {'P-O-P': 0.0, 'P-O-Fe': 1.0, 'Fe-O-P': 2.0, 'Fe-O-Fe': 0.0}
    assert qn_speciation(graph, ('P', 'Fe'), ('O',)) == {'P': {1: 1.0}, 'Fe': {2: 1.0}}
    # phosphate convention: only P–O–P bridges, so the P–O–Fe oxygens leave both P as Q⁰
    assert qn_speciation(graph, ('P',), ('O',), bridging_formers=('P',)) == {'P': {0: 1.0}}
    conventions = qn_conventions(graph, ('P', 'Fe'), ('O',))
    assert conventions == {
        'network': {'bridging_formers': ['P', 'Fe'], 'qn': {'P': {'1': 1.0}, 'Fe': {'2': 1.0}}},
        'phosphate': {'bridging_formers': ['P'], 'qn': {'P': {'0': 1.0}}},
    }


def test_qn_conventions_of_the_published_nafepo4_glass(reference_glass_paths):
    """Issue 13 item 14: P–O–Fe counted as bridging gives mostly Q⁴ for NaFePO4; the phosphate convention mostly Q⁰."""
    from aiida_glassml.analysis import analyse_structure, read_structure

    result = analyse_structure(read_structure(reference_glass_paths['ACE_300K_1']), rings=False, peaks=False)
    network, phosphate = result['qn_conventions']['network'], result['qn_conventions']['phosphate']
    assert network['bridging_formers'] == ['P', 'Fe'] and phosphate['bridging_formers'] == ['P']
    assert network['qn'] == result['qn']
    assert network['qn']['P']['4'] == pytest.approx(0.70, abs=0.02)
    assert phosphate['qn']['P']['0'] == pytest.approx(0.85, abs=0.02)
    assert sum(phosphate['qn']['P'].values()) == pytest.approx(1.0)


def test_guttman_rings_of_a_hand_built_network(ring_network):
    result = guttman_rings(ring_network, {'P-O': 2.0, 'Fe-O': 2.2}, formers=('P', 'Fe'), anions=('O',))
    assert result.size_distribution() == {4: 1, 8: 1}
    assert result.bond_size_distribution() == {4: 4, 8: 8}
    assert result.n_wrapping == 0
    symbols = ring_network.get_chemical_symbols()
    assert sorted(map(sorted, result.former_counts(symbols)), key=len) == [['Fe'], ['P']]
    centres = {len(r): c for r, c in zip(result.rings, result.centres)}
    assert centres[8] == pytest.approx([6.6, 6.6, 5.0])
    assert centres[4] == pytest.approx([21.4, 20.0, 20.0])
    graph = bond_graph(ring_network, {'P-O': 2.0, 'Fe-O': 2.2})
    assert edge_sharing(graph, ('P', 'Fe'), ('O',))['Fe-Fe'] == {'corner': 0, 'edge': 1, 'face': 0}
    assert edge_sharing(graph, ('P', 'Fe'), ('O',))['P-P'] == {'corner': 4, 'edge': 0, 'face': 0}
    r, g, n_r = ring_centre_rdf(ring_network, result.centres[[0]] if len(result.rings[0]) == 8 else result.centres[[1]], 'P', r_max=5.0)
    assert n_r[r < 2.2][-1] == 0 and n_r[r > 2.3][0] == 4  # the four P corners at 3.2/√2 = 2.26 Å from the centre


def test_rings_winding_around_the_cell_are_not_rings():
    # an infinite P–O chain along x: closing a bond only by going around the cell
    chain = Atoms(['P', 'O', 'P', 'O'], positions=[[0, 5, 5], [1.6, 5, 5], [3.2, 5, 5], [4.8, 5, 5]],
                  cell=[6.4, 10, 10], pbc=True)  # fmt: skip
    result = guttman_rings(chain, {'P-O': 2.0}, formers=('P',), anions=('O',))
    assert result.size_distribution() == {}
    assert result.n_wrapping == 4


def test_oxidation_states_from_thesis_bins():
    states = oxidation_states_from_magmoms([0.05, -0.95, 2.1, 0.5, 1.19])
    assert states.tolist() == [5, 4, 3, 0, 4]


def test_r_chi():
    x = np.linspace(0.0, 10.0, 201)
    y = np.sin(x) + 2.0
    assert r_chi(x, y, x, y) == pytest.approx(0.0)
    assert r_chi(x, 1.1 * y, x, y, (1.0, 9.0)) == pytest.approx(0.1)
    with pytest.raises(AnalysisInputError, match='outside the model curve'):
        r_chi(x[:50], y[:50], x, y, (0.0, 10.0))


def test_pair_keys_put_the_anion_last():
    assert pair_key('O', 'Fe') == 'Fe-O'
    assert pair_key('P', 'Fe') == 'Fe-P'
    assert pair_key('S', 'O') == 'O-S'


def test_non_periodic_cell_is_rejected(ring_network):
    molecule = Atoms(['P', 'O'], positions=[[0, 0, 0], [1.5, 0, 0]])
    for call in (lambda: compute_rdf(molecule), lambda: neighbor_pairs(molecule, 3.0),
                 lambda: guttman_rings(molecule, {'P-O': 2.0}, formers=('P',), anions=('O',))):  # fmt: skip
        with pytest.raises(NonPeriodicCellError, match='periodic along x, y and z'):
            call()
    slab = ring_network.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(NonPeriodicCellError, match='set_cell'):
        compute_rdf(slab)


def test_r_max_beyond_minimum_image_is_rejected(ring_network):
    with pytest.raises(AnalysisInputError, match='exceeds half the smallest cell width'):
        compute_rdf(ring_network, r_max=20.0)


def test_tables_agree_with_vitrum_data_files():
    """Our tabulated constants against the independently typed tables shipped with vitrum (3 significant digits)."""
    import csv
    import pathlib

    import vitrum

    from aiida_glassml.analysis.scattering import CROMER_MANN, NEUTRON_SCATTERING_LENGTHS

    folder = pathlib.Path(vitrum.__file__).parent
    with open(folder / 'scattering_lengths.csv', encoding='utf-8-sig') as handle:
        lengths = {row[0]: float(row[1].replace(',', '.')) for row in csv.reader(handle, delimiter=';') if row[0] != 'Isotope'}
    for element, value in NEUTRON_SCATTERING_LENGTHS.items():
        assert value == pytest.approx(lengths[element], abs=0.011), element
    with open(folder / 'x_ray_scattering_factor_coefficients.csv', encoding='utf-8-sig') as handle:
        rows = {row[0]: [float(x) for x in row[1:]] for row in csv.reader(handle) if row[0] != 'Element'}
    for element, coefficients in CROMER_MANN.items():
        assert coefficients == pytest.approx(rows[element], rel=6e-3, abs=1e-3), element
