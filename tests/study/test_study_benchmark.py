"""The study's comparison through ``PotentialBenchmarkWorkChain``: a study with a given ACE potential (the published
NaFePO4 one) and CHGNet in its comparison makes both glasses, and its benchmark stage evaluates both potentials on the
recipe's DFT frames (three frames of the published test set). The table lands in the study's summary, the numbers
match a direct pyace evaluation, and the benchmark hangs off the study with the very test set and MLIP node it was
given. Bad benchmark sections are refused with the recipe line, before anything is stored."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from aiida import orm

from aiida_glassml.common.frames import FrameSet
from aiida_glassml.common.recipe import RecipeError, read_recipe

RECIPE = textwrap.dedent("""\
    study: benchmark_test
    compositions:
      NaPO3: {units: [Na2O, P2O5], fractions: [0.5, 0.5]}
    potential: {ace: POTENTIAL}
    glasses:
      structure: {n_atoms: 20, density: 2.5}
      engine: ase
      protocol: fast
      overrides:  # ~150 steps: CHGNet costs ~0.1-0.4 s a step here
        replicas: 1
        melt_quench: {t_high: 1500.0, time_scale: 0.0002, cooling_rate: 30000.0}
        minimize: {maxiter: 20}
    analysis: {protocol: fast, overrides: {network_parameters: {max_ring_size: 6}}}
    elastic: null
    diffusion: null
    comparison:
      chgnet: {mlip: chgnet}
    benchmark: {test_set: test_frames.extxyz, protocol: fast}
    """)


@pytest.fixture
def benchmark_recipe(tmp_path, reference_potential_yaml, reference_test_set_path):
    """The recipe file, beside it the three smallest frames (100 atoms) of the published test set as extxyz."""
    frames = FrameSet.read_pacemaker_pickle(reference_test_set_path)
    frames = frames.select(np.argsort(frames.n_atoms, kind='stable')[:3].tolist())
    frames.write_extxyz(tmp_path / 'test_frames.extxyz')
    path = tmp_path / 'study.yaml'
    path.write_text(RECIPE.replace('POTENTIAL', str(reference_potential_yaml)))
    return path, frames


@pytest.mark.slow
def test_study_comparison_runs_the_benchmark(installed_code, benchmark_recipe, reference_potential_yaml):
    from aiida.engine import run_get_node
    from pyace import PyACECalculator

    from aiida_glassml.data.mlip_potential import MlipPotentialData
    from aiida_glassml.workflows.study import build_study

    path, frames = benchmark_recipe
    codes = {'python': installed_code('python', 'core.shell', label='glassml-python')}
    builder = build_study(read_recipe(path), codes=codes)
    assert set(builder.potentials) == {'main', 'chgnet'} and isinstance(builder.potentials['chgnet'], MlipPotentialData)
    assert builder.test_set.is_stored and builder.test_set.n_frames == 3
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert set(results['glasses']) == {'main_NaPO3_replica_0', 'chgnet_NaPO3_replica_0'}

    summary = results['summary'].get_dict()
    assert summary['stages']['benchmark']['test_set']['exit_status'] == 0
    rows = {row['potential']: row for row in summary['benchmark']}
    assert {label: row['kind'] for label, row in rows.items()} == {'main': 'ace', 'chgnet': 'mlip'}
    assert all(row['n_frames'] == 3 and row['force_mae'] > 0 for row in rows.values())
    # the ACE row is the published potential on these frames: checked against pyace called directly
    calculator = PyACECalculator(str(reference_potential_yaml))
    errors = []
    for atoms in frames.to_atoms():
        reference = atoms.get_forces()
        atoms.calc = calculator
        errors.append(np.abs(atoms.get_forces() - reference).ravel())
    assert rows['main']['force_mae'] == pytest.approx(1000 * np.concatenate(errors).mean(), rel=1e-6)
    table = results['summary_table'].get_content()
    assert '## Errors on the DFT test set' in table and '| main | ace | 3 |' in table and '| chgnet | mlip | 3 |' in table

    # provenance: the benchmark was called by the study on the study's own test set and MLIP node
    benchmark = node.base.links.get_outgoing(link_label_filter='benchmark').one().node
    assert benchmark.process_label == 'PotentialBenchmarkWorkChain' and benchmark.is_finished_ok
    assert benchmark.inputs.test_set.uuid == builder.test_set.uuid
    assert benchmark.inputs.potentials.chgnet.uuid == builder.potentials['chgnet'].uuid


def test_benchmark_section_refused_with_its_line(tmp_path, node_count):
    """A given potential has no held-out frames; a missing file; reference energies without every element."""
    from aiida_glassml.workflows.study import benchmark_potentials

    base = RECIPE.replace('POTENTIAL', 'missing.yaml').replace('potential: {ace: missing.yaml}', 'potential: {classical: teter}')
    before = node_count()
    cases = [
        ('benchmark: {test_set: test_frames.extxyz, protocol: fast}', 'benchmark: {protocol: fast}',
         '`benchmark`: a study with a given potential holds out no DFT frames'),
        ('benchmark: {test_set: test_frames.extxyz, protocol: fast}', 'benchmark: {test_set: absent.extxyz}',
         '`benchmark.test_set`: no file'),
        ('benchmark: {test_set: test_frames.extxyz, protocol: fast}',
         'benchmark: {test_set: 12, reference_energies: {Na: -1.0}}',
         "`benchmark.reference_energies`: no reference energy for ['O', 'P']"),
    ]  # fmt: skip
    for old, new, expected in cases:
        text = base.replace(old, new)
        line = next(i for i, l in enumerate(text.splitlines(), 1) if l.startswith('benchmark:'))
        with pytest.raises(RecipeError) as info:
            read_recipe(tmp_path / 'study.yaml', text)
        assert str(info.value).startswith(f'{tmp_path / "study.yaml"}:{line}: {expected}'), str(info.value)
    # `benchmark: null` skips it; a study that trains with a comparison benchmarks by default
    assert read_recipe('a.yaml', base.replace(cases[0][0], 'benchmark: null')).data['benchmark'] is None
    trains = RECIPE.replace('potential: {ace: POTENTIAL}\n', '').replace(cases[0][0] + '\n', '')
    assert read_recipe('b.yaml', trains).data['benchmark'] == {}
    # a bare ASE calculator has no node to evaluate: it gets a row saying so
    nodes, skipped = benchmark_potentials({'main': (None, None, 'ase'), 'emt': (None, {'name': 'x:Y'}, 'ase')})
    assert nodes == {} and 'without a potential node' in skipped['emt']
    assert node_count() == before
