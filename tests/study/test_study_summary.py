"""The study summary on plain dicts: one row per potential and composition, the Markdown table (pinned) and the
comparison figures."""

from __future__ import annotations

import numpy as np

from aiida_glassml.common import study_summary

GLASSES = {'main_NaFePO4': {'densities': {'mean': 3.01}, 'tg': {'tg': 812.4}},
           'bmp_NaFePO4': {'densities': {'mean': 3.12}, 'tg': {'tg': None}}}
ANALYSES = {'main_NaFePO4': {'coordination': {'P': {'O': 4.0}, 'Fe': {'O': 4.61}},
                             'qn': {'P': {'0': 0.5, '1': 0.25, '2': 0.25}}, 'bridging': {'P-O-P': 0.75},
                             'qn_conventions': {'phosphate': {'qn': {'P': {'0': 0.75, '1': 0.25}}}},
                             'edge_sharing': {'Fe-Fe': {'edge': 3, 'face': 1}, 'P-P': {'edge': 0, 'face': 0}},
                             'former_former_bonds': {'counts': {'P-P': 2}}}}
ELASTIC = {'main_NaFePO4': {'K': {'mean': 61.2}, 'G': {'mean': 25.0}, 'E': {'mean': 65.8}}}
DIFFUSION = {'main_NaFePO4': {'arrhenius': {'all': {'Na': {'all': {'Ea_eV': 0.61}}}},
                              'conductivity': {'all': {'species': {'Na': {'sigma_NE_S_cm': 2.5e-3}}}}}}


def test_rows_and_table(file_regression):
    rows = study_summary.glass_rows(GLASSES, ANALYSES, ELASTIC, DIFFUSION, {'main_NaFePO4': 12})
    main = next(row for row in rows if row['potential'] == 'main')
    # the structure and moduli columns are the benchmark's glass table (one implementation for both)
    assert main['former_cn'] == 'P 4.00, Fe 4.61' and main['qn'] == 'P 0:0.50 1:0.25 2:0.25' and main['pn'] == 'P 0:0.75 1:0.25'
    assert main['bridging'] == 'P-O-P 0.75' and main['edge_sharing'] == 'Fe-Fe 3/1' and main['former_former'] == 'P-P 2'
    assert main['bulk_modulus'] == 61.2 and main['youngs_modulus'] == 65.8
    assert main['activation_energy'] == 0.61 and main['conductivity'] == 2.5e-3
    bmp = next(row for row in rows if row['potential'] == 'bmp')
    assert bmp['tg'] is None and bmp['former_cn'] is None
    file_regression.check(study_summary.format_table(rows, 'Study test'), extension='.md')


def test_figures_are_png():
    rows = study_summary.glass_rows(GLASSES, ANALYSES, ELASTIC, DIFFUSION, {})
    assert study_summary.plot_densities(rows)[:4] == b'\x89PNG'
    q = np.linspace(0.5, 20, 50)
    curves = {'main': {'q': q, 's': np.sin(q), 'r': q / 3, 'g': np.cos(q), 'pair': 'P-O'}, 'bmp': {}}
    assert study_summary.plot_structure_comparison('NaFePO4', curves)[:4] == b'\x89PNG'


def test_potential_notes_say_what_the_numbers_rest_on():
    stages = {'active_learning': {'test_force_rmse': 2150.0, 'test_energy_rmse': 76.2, 'training_frames': 16,
                                  'iterations': 1, 'stop_reason': 'max_iterations'}}  # fmt: skip
    (note,) = study_summary.potential_notes(stages)
    assert 'force RMSE is 2150 meV/Å' in note and 'show the machinery, not the material' in note
    stages['active_learning']['test_force_rmse'] = 150.0
    assert 'machinery' not in study_summary.potential_notes(stages)[0]
    assert study_summary.potential_notes({}) == []
    table = study_summary.format_table([{'potential': 'main', 'composition': 'X'}], 'T', ['a note'])
    assert table.startswith('# T\n\na note\n\n| potential | composition |')
