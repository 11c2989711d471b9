"""The benchmark's tables and figures on plain dicts and arrays (aiida_glassml.common.benchmark): rows, Markdown, CSV,
the glass columns from a real structure analysis, and the overlaid g(r)/S(Q) figures."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_glassml.common import benchmark

METRICS = {'n_frames': 3, 'energy_mae': 812.4, 'energy_rmse': 812.9, 'energy_mae_offset': 4.21,
           'energy_rmse_offset': 5.02, 'force_mae': 151.3, 'force_rmse': 220.7}  # fmt: skip


def test_metric_rows_markdown_and_csv():
    rows = [benchmark.metric_row('ace', 'ace', METRICS, us_per_atom_step=812.0),
            benchmark.metric_row('bmp', 'classical', None, note='classical potential: not evaluated')]  # fmt: skip
    assert rows[0]['energy_mae_offset'] == 4.21 and rows[0]['n_frames'] == 3
    assert rows[1]['force_mae'] is None and rows[1]['note'].startswith('classical')
    table = benchmark.format_metrics_table(rows, title='T', notes=['a note'])
    lines = table.splitlines()
    assert lines[:4] == ['## T', '', 'a note', '']
    assert lines[4] == ('| potential | kind | frames | E MAE raw (meV/atom) | E RMSE raw (meV/atom) | '
                        'E MAE offset (meV/atom) | E RMSE offset (meV/atom) | F MAE (meV/Å) | F RMSE (meV/Å) | '
                        'MD µs/atom-step | note |')  # fmt: skip
    assert lines[6] == '| ace | ace | 3 | 812.4 | 812.9 | 4.2 | 5.0 | 151 | 221 | 812 | – |'
    assert lines[7] == '| bmp | classical | – | – | – | – | – | – | – | – | classical potential: not evaluated |'
    csv = benchmark.table_csv(rows).splitlines()
    assert csv[0].startswith('potential,kind,n_frames,energy_mae,')
    assert csv[1].startswith('ace,ace,3,812.4,812.9,4.21,')
    assert csv[2].startswith('bmp,classical,,,')
    # a column with no value anywhere is left out
    assert 'MD µs' not in benchmark.format_metrics_table([benchmark.metric_row('x', 'mlip', METRICS)])


def test_structure_row_from_a_real_analysis():
    """The glass columns from analyse_structure on a hand-made cell whose P–O–P links, Qⁿ and planted P–P contact are
    known."""
    from ase import Atoms

    from aiida_glassml.analysis.structure import analyse_structure

    # two PO4 tetrahedra sharing one O (a P2O7 dimer: Q1 each) in a big box, plus a P–P pair at 2.2 Å far away
    o = 1.54 / np.sqrt(3)
    t1 = np.array([[0, 0, 0], [o, o, o], [o, -o, -o], [-o, o, -o], [-o, -o, o]])
    t2 = t1 * [-1, -1, 1] + 2 * np.array([o, o, o])  # shares the (o, o, o) oxygen
    t2 = np.delete(t2, 1, axis=0)
    positions = np.vstack([t1, t2, [[8, 8, 8], [10.2, 8, 8]]]) + 3.0
    atoms = Atoms('PO4PO3P2', positions=positions, cell=[16, 16, 16], pbc=True)
    results = analyse_structure(atoms, cutoffs={'P-O': 2.0, 'O-P': 2.0}, rings=False, peaks=False)
    row = benchmark.structure_row('ace', 'dimer', results, {'K': {'mean': 40.25}, 'G': {'mean': 20.0}, 'E': 51.0})
    assert row['qn'].startswith('P 0:0.50 1:0.50')  # the two isolated P count as Q0
    assert row['pn'] == 'P 0:0.50 1:0.50'
    assert 'P-O-P 0.25' in row['bridging']
    assert row['former_former'] == 'P-P 1'  # the planted artefact
    assert row['edge_sharing'] == 'none'
    assert (row['bulk_modulus'], row['shear_modulus'], row['youngs_modulus']) == (40.25, 20.0, 51.0)
    assert row['density'] == pytest.approx(results['density'])
    table = benchmark.format_structure_table([row, benchmark.structure_row('mlip', 'dimer', None, note='failed')])
    assert '| ace | dimer |' in table and '| mlip | dimer | – |' in table and table.count('\n') == 6


def test_partials_and_figures():
    names = ['g_Na_Na', 'g_O_O', 'g_P_P', 'g_Fe_O', 'g_O_P', 'g_Na_O', 'r', 'n_P_O']
    assert benchmark.important_partials(names) == ['g_O_P', 'g_Fe_O', 'g_P_P', 'g_Na_O']
    r = np.linspace(0.01, 6, 100)
    q = np.linspace(0.5, 20, 100)
    curves = {'ace': {'r': r, 'g_total': np.exp(-((r - 1.5) ** 2)), 'g_O_P': np.exp(-((r - 1.54) ** 2)), 'q': q,
                      'S_neutron': 1 + np.sin(q) / q, 'S_xray': 1 + np.cos(q) / q},
              'chgnet': {'r': r, 'g_total': np.exp(-((r - 1.6) ** 2)), 'q': q,
                         'S_xray': 1 + np.sin(q) / q}}  # fmt: skip
    assert benchmark.plot_rdf_overlay('glass', curves, ['g_O_P'])[:4] == b'\x89PNG'
    assert benchmark.plot_sq_overlay('glass', curves)[:4] == b'\x89PNG'
