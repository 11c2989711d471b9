"""``aiida-glassml analyse trajectory FILE ...``: MSD, D, conductivity, van Hove and hops of MD trajectories (LAMMPS
dumps, extxyz, XDATCAR), with an Arrhenius fit when the files are at two or more temperatures. ``--store`` records
the trajectories and runs ``GlassAnalysisWorkChain`` on them, so every result and figure has provenance."""

from __future__ import annotations

import contextlib
import logging
import math
import pathlib
import sys

import click

from .cmd_analyse import analyse
from .utils import echo_json, fail, split_elements


def _type_map(value: str | None) -> dict | None:
    if not value:
        return None
    from aiida_glassml.analysis import AnalysisInputError
    from aiida_glassml.analysis.io import check_type_map

    mapping = {}
    for item in value.split(','):
        try:
            key, element = item.split('=')
            mapping[int(key)] = element.strip()
        except ValueError:
            fail(f'--type-map {value!r} is not of the form TYPE=ELEMENT,..., e.g. --type-map 1=Fe,2=Na,3=O,4=P')
    try:
        return check_type_map(mapping)
    except AnalysisInputError as exc:
        fail(f'--type-map: {exc}')


@analyse.command('trajectory')
@click.argument('paths', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--format', 'file_format', default=None,
              help='lammps-dump, extxyz, vasp-xdatcar or any ASE format (default: from the file name).')  # fmt: skip
@click.option('--timestep-ps', type=float, default=None,
              help='Time between stored frames in ps (needed unless the frames carry times).')  # fmt: skip
@click.option('-T', '--temperature', 'temperatures', type=float, multiple=True,
              help='Temperature (K) of each file, in order; needed for conductivity and Arrhenius.')  # fmt: skip
@click.option('--species', default=None, help='Species to analyse, comma separated (default: all).')
@click.option('--fit-window', type=(float, float), default=None, help='Diffusive fit window START END in ps '
              '(default: detected where the log-log MSD slope is near 1).')  # fmt: skip
@click.option('--van-hove-times', default=None, help='Times (ps) for G_s(r,t), comma separated.')
@click.option('--hops/--no-hops', default=True, show_default=True, help='Count hops (> 3 Å) of the mobile ion.')
@click.option('--t-min', type=float, default=None, help='Fit Arrhenius only to temperatures >= T_MIN (K).')
@click.option('--stride', type=click.IntRange(min=1), default=1, show_default=True,
              help='Read every STRIDE-th frame.')  # fmt: skip
@click.option('--type-map', default=None,
              help='LAMMPS type to element, e.g. 1=Fe,2=Na,3=O,4=P (dumps without elements).')  # fmt: skip
@click.option('--data-file', type=click.Path(exists=True, dir_okay=False), default=None,
              help='LAMMPS data file whose Masses map dump types to elements.')  # fmt: skip
@click.option('--memmap/--no-memmap', default=None,
              help='Stream frames into a float32 memory map in a temporary folder instead of memory (default: for '
                   'files over 256 MiB).')  # fmt: skip
@click.option('--json', 'as_json', is_flag=True, help='Print the results as one JSON object.')
@click.option('--store', is_flag=True, help='Store the trajectories and run GlassAnalysisWorkChain (with figures).')
def analyse_trajectory_command(paths, file_format, timestep_ps, temperatures, species, fit_window, van_hove_times, hops,
                               t_min, stride, type_map, data_file, memmap, as_json, store):  # fmt: skip
    """Ion dynamics of one or more trajectories; several files at different -T give an Arrhenius fit."""
    from aiida_glassml.analysis import AnalysisInputError
    from aiida_glassml.analysis import dynamics as dyn
    from aiida_glassml.analysis.dynamics_summary import check_temperature, fill_dynamics_parameters
    from aiida_glassml.analysis.dynamics_summary import run_dynamics_analysis

    if temperatures and len(temperatures) != len(paths):
        fail(f'give one -T/--temperature per file: {len(paths)} files but {len(temperatures)} temperatures.')
    if t_min is not None and len(set(temperatures)) < 2:
        fail('--t-min needs files at two or more temperatures (-T) for an Arrhenius fit.')
    if store and not temperatures:
        fail('--store runs GlassAnalysisWorkChain, which needs the temperature of each file (-T).')
    for value in temperatures:  # before any file is read or node stored; 0 K would drop the conductivity
        try:
            check_temperature(value)
        except AnalysisInputError as exc:
            fail(f'-T/--temperature: {exc}')
    if timestep_ps is not None and not (math.isfinite(timestep_ps) and timestep_ps > 0):
        fail(f'--timestep-ps {timestep_ps:g} must be > 0 (ps between stored frames, e.g. 0.1).')
    if species:
        split_elements(species, '--species', 'Na,O')
    parameters = {'hops': {} if hops else None}
    if species:
        parameters['species'] = [s.strip() for s in species.split(',') if s.strip()]
    if fit_window:
        parameters['fit_window'] = list(fit_window)
    if van_hove_times:
        try:
            parameters['van_hove_times'] = [float(v) for v in van_hove_times.split(',')]
        except ValueError:
            fail(f'--van-hove-times {van_hove_times!r} must be numbers in ps, comma separated, e.g. 1,10,100')
    reader = {'type_to_element': _type_map(type_map)} if type_map else {}
    if data_file:
        reader['data_file'] = data_file
    trajectories, filled, outputs = {}, {}, {}
    try:
        for number, path in enumerate(paths):
            label = path.stem if path.stem not in trajectories else f'{path.stem}_{number}'
            traj = dyn.read_trajectory(path, file_format, timestep_ps, step=stride, memmap=memmap, **reader)
            own = dict(parameters)
            if temperatures:
                own['temperature'] = temperatures[number]
            else:
                own['charges'] = {}  # no temperature: no conductivity
            filled[label] = fill_dynamics_parameters(traj, own)
            trajectories[label] = traj
        if store:
            result = _store(trajectories, filled, parameters, temperatures, t_min)
            if as_json:
                echo_json(result)
            else:
                for key, value in result['stored'].items():
                    click.echo(f'{key}: {value}')
            return
        for label, traj in trajectories.items():
            selected = [s for s in filled[label]['species']]
            total = int(sum((traj.symbols == s).sum() for s in selected))
            with click.progressbar(length=total, label=f'{label}: {traj.n_atoms} atoms x {traj.n_frames} frames',
                                   file=sys.stderr) as bar:  # fmt: skip
                outputs[label] = run_dynamics_analysis(traj, filled[label], progress=bar.update)['results']
        summary = {'trajectories': outputs}
        if len(set(temperatures)) >= 2:
            summary['arrhenius'] = _arrhenius(outputs, t_min)
    except (AnalysisInputError, OSError) as exc:
        fail(str(exc))
    if as_json:
        echo_json(summary)
        return
    for label, data in outputs.items():
        temperature = f' at {data["temperature"]:g} K' if data.get('temperature') else ''
        click.echo(f'{label}{temperature}: {data["n_frames"]} frames, {data["duration_ps"]:g} ps')
        for name, entry in data['diffusion'].items():
            if entry['diffusive']:
                click.echo(f'  D({name}) = {entry["D_cm2_s"]:.3e} ± {entry["D_err_cm2_s"]:.1e} cm²/s '
                           f'(fit {entry["window"][0]:g}-{entry["window"][1]:g} ps)')  # fmt: skip
            else:
                click.echo(f'  D({name}): not diffusive')
        for name, entry in data.get('conductivity', {}).items():
            click.echo(f'  σ_NE({name}) = {entry["sigma_NE_S_cm"]:.3e} S/cm')
        if data.get('hops'):
            h = data['hops']
            click.echo(f'  hops({h["species"]}): {h["n_hops"]}, Γ = {h["rate_per_ion_ps"]:.3g}/ps per ion, '
                       f'D_jump = {h["D_jump_cm2_s"]:.3e} cm²/s, concerted {h["concerted_fraction"]:.2f}')  # fmt: skip
    for name, fit in summary.get('arrhenius', {}).items():
        if fit.get('fitted'):
            click.echo(f'Arrhenius {name}: Ea = {fit["Ea_eV"]:.3f} ± {fit["Ea_err_eV"]:.3f} eV, '
                       f'D0 = {fit["D0_cm2_s"]:.3e} cm²/s')  # fmt: skip
        else:
            click.echo(f'Arrhenius {name}: {fit["reason"]}')


def _arrhenius(outputs: dict, t_min) -> dict:
    from aiida_glassml.analysis import dynamics as dyn

    rows = {}
    for data in outputs.values():
        for name, entry in data['diffusion'].items():
            if entry['diffusive']:
                rows.setdefault(name, []).append((data['temperature'], entry['D'], entry['D_err']))
    summary = {}
    for name, points in rows.items():
        if len({p[0] for p in points}) < 2:
            summary[name] = {'fitted': False, 'reason': f'diffusive at {len(points)} temperature(s); need two or more'}
            continue
        temperatures, D, D_err = zip(*sorted(points))
        try:
            summary[name] = {'fitted': True, **dyn.arrhenius_fit(temperatures, D, D_err, t_min=t_min).as_dict()}
        except dyn.ArrheniusError as exc:
            summary[name] = {'fitted': False, 'reason': str(exc)}
    return summary


@contextlib.contextmanager
def _reports_to_stderr():
    """Send the work chain's reports to stderr while it runs, so that stdout stays one JSON object."""
    from aiida.cmdline.utils.log import CliHandler

    def to_stderr(record):
        record.err = True
        return True

    handlers = [h for name in ('aiida', '') for h in logging.getLogger(name).handlers if isinstance(h, CliHandler)]
    for handler in handlers:
        handler.addFilter(to_stderr)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(to_stderr)


def _store(trajectories, filled, parameters, temperatures, t_min) -> dict:
    from aiida import load_profile
    from aiida.manage import get_manager

    if get_manager().get_profile() is None:
        try:
            load_profile()
        except Exception as exc:  # noqa: BLE001
            fail(f'--store needs an AiiDA profile ({exc}); pass -p PROFILE or run `verdi presto`.')
    from aiida.engine import run_get_node
    from aiida.orm import Dict, Float

    from aiida_glassml.calcfunctions.analysis import trajectory_node_from
    from aiida_glassml.workflows.analysis import GlassAnalysisWorkChain

    shared = {k: v for k, v in parameters.items() if v is not None}  # what the user chose; defaults per trajectory
    inputs = {
        'trajectories': {label: trajectory_node_from(traj) for label, traj in trajectories.items()},
        'temperatures': {label: Float(filled[label]['temperature']) for label in trajectories},
        'dynamics_parameters': Dict(shared),
    }
    if t_min is not None:
        inputs['arrhenius_parameters'] = Dict({'t_min': t_min})
    with _reports_to_stderr():
        results, node = run_get_node(GlassAnalysisWorkChain, **inputs)
    if not node.is_finished_ok:
        fail(f'GlassAnalysisWorkChain<{node.pk}> failed with exit status {node.exit_status}: {node.exit_message}')
    stored = {'workchain': node.pk}
    for label in trajectories:
        stored[f'{label}.trajectory'] = inputs['trajectories'][label].pk
        stored[f'{label}.results'] = results['dynamics'][label]['results'].pk
        stored[f'{label}.msd_figure'] = results['dynamics'][label]['msd_figure'].pk
    if 'arrhenius' in results and 'figure' in results['arrhenius']:
        stored['arrhenius.figure'] = results['arrhenius']['figure'].pk
    return {
        'stored': stored,
        'trajectories': {label: results['dynamics'][label]['results'].get_dict() for label in trajectories},
        **({'arrhenius': results['arrhenius']['arrhenius'].get_dict()} if 'arrhenius' in results else {}),
    }
