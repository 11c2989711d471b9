"""GlassStudyWorkChain for real, with a given potential (no training): a classical (BMP) melt-quench in LAMMPS, the
same glass with Teter for comparison, structure analysis of both, and the thesis's hybrid scheme (a short CP2K MD of
the BMP glass). Checks the stage wiring, the comparison table and figures, and that the hybrid labels lead back to
CP2K."""

from __future__ import annotations

import textwrap

import pytest
from aiida import orm

from aiida_glassml.common.recipe import read_recipe

RECIPE = textwrap.dedent("""\
    study: hybrid_test
    compositions:
      Na3PO4: {units: [Na2O, P2O5], fractions: [0.75, 0.25]}
    labels: {engine: cp2k, protocol: fast}
    potential: {classical: bmp}
    glasses:
      structure: {n_atoms: 24, density: 2.5, units_geometry: tetrahedra}
      engine: lammps
      protocol: fast
      overrides: {replicas: 1, melt_quench: {t_high: 1500.0}}
    analysis: {protocol: fast}
    elastic: null
    diffusion: null
    comparison:
      teter: {classical: teter}
    hybrid:
      protocol: fast
      overrides: {aimd: {temperature: 300.0, steps: 2, sample_every: 2}}
    """)


@pytest.mark.slow
def test_given_potential_comparison_and_hybrid(installed_code):
    from aiida.engine import run_get_node

    from aiida_glassml.tools.provenance import trace
    from aiida_glassml.workflows.study import build_study

    codes = {'python': installed_code('python', 'core.shell', label='glassml-python'),
             'lammps': installed_code('lmp', 'glassml.lammps_md', label='lammps'),
             'dft': installed_code('cp2k', 'cp2k')}  # fmt: skip
    builder = build_study(read_recipe('hybrid.yaml', RECIPE), codes=codes)
    assert set(builder.potentials) == {'main', 'teter'}
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert set(results['glasses']) == {'main_Na3PO4_replica_0', 'teter_Na3PO4_replica_0'}
    summary = results['summary'].get_dict()
    rows = {row['potential']: row for row in summary['glasses']}
    assert set(rows) == {'main', 'teter'} and all(row['density'] > 1.0 for row in rows.values())
    assert rows['main']['hybrid_frames'] >= 1 and rows['teter']['hybrid_frames'] is None
    assert 'initial_dataset' not in summary['stages'] and set(summary['stages']['hybrid']) == {'main_Na3PO4'}
    table = results['summary_table'].get_content()
    assert '| main | Na3PO4 |' in table and '| teter | Na3PO4 |' in table and 'DFT MD frames' in table
    figures = results['figures']
    assert {'densities', 'structure_Na3PO4', 'cooling_curve_main_Na3PO4', 'cooling_curve_teter_Na3PO4'} <= set(figures)
    assert figures['structure_Na3PO4'].get_content(mode='rb')[:4] == b'\x89PNG'
    assert isinstance(results['potential'], orm.Data) and results['potential'].name == 'bmp'
    # the hybrid labels lead back to CP2K; the glasses of a given classical potential lead to no DFT at all
    hybrid = next(n for n in node.called if n.process_label == 'LabelWorkChain')
    traced = trace(hybrid.outputs.training_set)
    assert traced.counts['dft_calculations'] and all(c['engine'] == 'cp2k' for c in traced.to_dict()['labelling_calculations'])
    assert not trace(figures['cooling_curve_teter_Na3PO4']).to_dict()['labelling_calculations']
