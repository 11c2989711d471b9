"""``aiida-glassml analyse structure`` and the calcfunction layer: JSON output, storing with provenance, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_glassml.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_analyse_structure_json(runner, reference_glass_paths):
    result = runner.invoke(cli, ['analyse', 'structure', str(reference_glass_paths['ACE_300K_1']), '--json'])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    for key in ('density', 'cutoffs', 'coordination', 'bridging', 'qn', 'n_atoms'):
        assert key in payload
    assert payload['n_atoms'] == 3003
    assert payload['coordination']['P']['O'] == pytest.approx(4.0, abs=0.05)
    assert payload['bridging']['P-O-Fe'] == pytest.approx(3.5, abs=0.3)
    overridden = runner.invoke(cli, ['analyse', 'structure', str(reference_glass_paths['ACE_300K_1']), '--json',
                                     '--cutoff', 'Fe-O=2.5'])  # fmt: skip
    assert json.loads(overridden.output)['cutoffs']['Fe-O'] == 2.5
    text = runner.invoke(cli, ['analyse', 'structure', str(reference_glass_paths['ACE_300K_1'])])
    assert 'density' in text.output and 'P-O-Fe' in text.output
    assert 'g(r) first peaks' in text.output and 'rings (P+Fe–O' in text.output


def test_analyse_structure_json_reports_rings_and_peaks(runner, reference_glass_paths):
    """The README promises g(r), S(Q) and rings in ``--json``: a ring summary and the peak positions."""
    from aiida_glassml.analysis import guttman_rings, read_structure

    path = reference_glass_paths['ACE_300K_1']
    payload = json.loads(runner.invoke(cli, ['analyse', 'structure', str(path), '--json']).output)
    assert payload['rdf_peaks']['P-O'] == pytest.approx(1.54, abs=0.03)  # P–O bond length
    assert payload['rdf_peaks']['Fe-O'] == pytest.approx(2.0, abs=0.1)
    sq = payload['sq_peaks']
    assert sq['q_min'] == pytest.approx(2 * np.pi / sq['r_max']) and sq['lorch'] is True
    for name in ('S_neutron', 'S_xray'):
        assert sq[name] and all(sq['q_min'] <= q <= 20.0 for q in sq[name]) and sq[name] == sorted(sq[name])
    rings = payload['rings']
    expected = guttman_rings(read_structure(path), {k: v for k, v in payload['cutoffs'].items() if k != 'Na-O'},
                             formers=('P', 'Fe'), anions=('O',))  # fmt: skip
    assert rings['size_distribution'] == {str(k): v for k, v in expected.size_distribution().items()}
    assert rings['n_rings'] == len(expected.rings) > 100
    assert rings['formers'] == ['P', 'Fe'] and rings['anions'] == ['O']


def test_analyse_structure_store_links_results_to_structure(runner, reference_glass_paths, aiida_profile_clean):
    from aiida.orm import load_node

    result = runner.invoke(cli, ['analyse', 'structure', str(reference_glass_paths['Teter_300K_1']), '--json', '--store'])
    assert result.exit_code == 0, result.output
    stored = json.loads(result.output)['stored']
    structure = load_node(stored['structure'])
    results = load_node(stored['results'])
    assert results.creator.inputs.structure.uuid == structure.uuid
    assert results['coordination']['P']['O'] == pytest.approx(4.0, abs=0.05)
    rdf = load_node(stored['rdf'])
    assert rdf.base.attributes.get('units')['r'] == 'angstrom'
    assert np.isfinite(rdf.get_array('g_Fe_O')).all()
    sq = load_node(stored['structure_factor'])
    assert sq.get_x()[2] == '1/angstrom'
    figure = load_node(stored['rdf_figure'])
    assert figure.creator.inputs.rdf.uuid == rdf.uuid
    with figure.open(mode='rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'


def test_bad_input_stores_nothing(runner, tmp_path, node_count, aiida_profile):
    import ase.io
    from aiida.orm import StructureData
    from ase import Atoms

    from aiida_glassml.analysis import NonPeriodicCellError
    from aiida_glassml.calcfunctions.analysis_structure import run_structure_analysis

    molecule = Atoms(['P', 'O'], positions=[[0, 0, 0], [1.5, 0, 0]])
    path = tmp_path / 'molecule.xyz'
    ase.io.write(path, molecule, format='extxyz')
    before = node_count()
    result = runner.invoke(cli, ['analyse', 'structure', str(path), '--store'])
    assert result.exit_code == 1
    assert 'periodic along x, y and z' in result.output
    assert node_count() == before
    with pytest.raises(NonPeriodicCellError, match='set_cell'):
        run_structure_analysis(StructureData(cell=[[1, 0, 0], [0, 1, 0], [0, 0, 1]], pbc=(False, False, False)))
    assert node_count() == before
    bad = tmp_path / 'no_masses.data'
    bad.write_text('x\n\n1 atoms\n1 atom types\n0 5 xlo xhi\n0 5 ylo yhi\n0 5 zlo zhi\n\nAtoms # atomic\n\n1 1 0 0 0\n')
    result = runner.invoke(cli, ['analyse', 'structure', str(bad), '--json'])
    assert result.exit_code == 1 and 'type_to_element' in result.output
