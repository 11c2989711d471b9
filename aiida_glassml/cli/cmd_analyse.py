"""``aiida-glassml analyse structure`` (this module) and ``analyse trajectory`` (added onto the same group by the
dynamics module). Works on plain files; ``--store`` records the results with provenance."""

import pathlib

import click

from . import cli
from .utils import echo_json, fail, split_elements


@cli.group('analyse')
def analyse():
    """Analyse glass structures and trajectories (LAMMPS data/dump, extxyz, POSCAR/XDATCAR)."""


def _parse_cutoffs(values) -> dict:
    cutoffs = {}
    for value in values:
        try:
            pair, distance = value.split('=')
            cutoffs[pair.strip()] = float(distance)
        except ValueError:
            fail(f'--cutoff {value!r} is not of the form PAIR=DISTANCE, e.g. --cutoff Fe-O=2.7')
    return cutoffs


@analyse.command('structure')
@click.argument('path', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('--format', 'file_format', default=None,
              help='lammps-data, lammps-dump, extxyz, vasp, vasp-xdatcar or any ASE format (default: from the name).')
@click.option('--cutoff', 'cutoffs', multiple=True, help='Bond cutoff override, e.g. --cutoff Fe-O=2.7 (repeatable).')
@click.option('--formers', default='P,Fe', show_default=True, help='Network formers, comma separated.')
@click.option('--anions', default='O,S', show_default=True, help='Anions, comma separated.')
@click.option('--experimental', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path), default=None,
              help='Experimental curve (two columns x y) to compute R_chi against.')
@click.option('--quantity', type=click.Choice(['S_neutron', 'S_xray', 'T_neutron', 'G_neutron', 'T_xray', 'G_xray',
                                               'T_neutron_broadened', 'T_xray_broadened']),
              default='S_neutron', show_default=True,
              help='Which model curve --experimental is (Q in 1/Å, r in Å). For a measured T(r) use a *_broadened '
                   'one: the model T(r) transformed through S(Q) up to Q_max = 20 1/Å, as the experiment is.')
@click.option('--lorch', is_flag=True,
              help='Lorch window: on g(r) (r_max) for S(Q), on S(Q) (Q_max) for the broadened T(r); damps ripples.')
@click.option('--q-range', 'x_range', type=(float, float), default=None,
              help='R_chi range LOWER UPPER (Q in 1/Å, or r in Å for T/G; default: the overlap of both curves).')
@click.option('--json', 'as_json', is_flag=True, help='Print the results as one JSON object.')
@click.option('--store', is_flag=True,
              help='Store structure, results, g(r), S(Q), partial S(Q), T(r)/G(r), R_chi and figures in the profile.')
def analyse_structure_command(path, file_format, cutoffs, formers, anions, experimental, quantity, lorch, x_range,
                              as_json, store):  # fmt: skip
    """Structure summary of one glass: density, bond cutoffs, coordination, bridging, Qⁿ, edge sharing, g(r) and
    S(Q) peak positions and Guttman rings; with
    --experimental also Wright's R_chi of the model S(Q) or T(r)/G(r) against an experimental curve."""
    from aiida_glassml.analysis import AnalysisInputError, analyse_structure, check_structure_options
    from aiida_glassml.analysis import read_experimental_curve, read_structure

    if x_range is not None and experimental is None:
        fail('--q-range needs --experimental FILE (the curve to compute R_chi against).')
    cutoff_map = _parse_cutoffs(cutoffs)
    former_list, anion_list = split_elements(formers, '--formers'), split_elements(anions, '--anions', 'O,S')
    r_chi_parameters = {'quantity': quantity, 'x_range': list(x_range) if x_range else None}
    lorch = bool(lorch)
    try:
        atoms = read_structure(path, format=file_format)
        check_structure_options(atoms, cutoff_map, former_list, anion_list)  # before anything is stored
        curve = read_experimental_curve(experimental) if experimental else None
        if store:
            results, pks = _store(atoms, cutoff_map, former_list, anion_list, path, curve, r_chi_parameters,
                                  experimental, lorch)  # fmt: skip
        else:
            results, pks = analyse_structure(atoms, cutoff_map, former_list, anion_list), None
            if curve is not None:
                results['r_chi'] = _r_chi(atoms, curve, r_chi_parameters, lorch)
    except (AnalysisInputError, OSError) as exc:
        fail(str(exc) if str(path) in str(exc) else f'{path}: {exc}')
    if pks:
        results = {**results, 'stored': pks}
    if as_json:
        echo_json(results)
        return
    click.echo(f'{path.name}: {results["n_atoms"]} atoms, density {results["density"]:.3f} g/cm³')
    click.echo('cutoffs (Å): ' + ', '.join(f'{k} {v:.2f}' for k, v in results['cutoffs'].items()))
    for centre, by_neighbour in sorted(results['coordination'].items()):
        click.echo(f'CN {centre}: ' + ', '.join(f'{n} {v:.2f}' for n, v in sorted(by_neighbour.items())))
    click.echo('bridging (per A): ' + ', '.join(f'{k} {v:.3f}' for k, v in results['bridging'].items()))
    for name, entry in results.get('qn_conventions', {'network': {'bridging_formers': results['formers'],
                                                                   'qn': results['qn']}}).items():  # fmt: skip
        bridging = '/'.join(entry['bridging_formers'])
        note = ' (compare with the literature)' if name == 'phosphate' else ''
        for former, fractions in entry['qn'].items():
            click.echo(f'Q^n {former}, {name} convention (bridging: {bridging}–O–{bridging}){note}: '
                       + ', '.join(f'Q{n} {v:.3f}' for n, v in sorted(fractions.items())))  # fmt: skip
    if results.get('rdf_peaks'):
        click.echo('g(r) first peaks (Å): ' + ', '.join(f'{k} {v:.2f}' for k, v in results['rdf_peaks'].items()))
    if results.get('sq_peaks'):
        sq = results['sq_peaks']
        for name in ('S_neutron', 'S_xray'):
            if sq.get(name) is not None:
                click.echo(f'{name} peaks (1/Å, Lorch, Q > {sq["q_min"]:.2f}): ' + ', '.join(f'{v:.2f}' for v in sq[name]))
    if results.get('rings'):
        rings = results['rings']
        click.echo(f'rings ({"+".join(rings["formers"])}–{"+".join(rings["anions"])}, ≤{rings["max_size"]} atoms): '
                   f'{rings["n_rings"]}; by size ' + ', '.join(f'{k}: {v}' for k, v in rings['size_distribution'].items()))
    if 'r_chi' in results:
        entry = results['r_chi']
        click.echo(f'R_chi({entry["quantity"]}) = {entry["r_chi"]:.4f} ({100 * entry["r_chi"]:.2f} %) over '
                   f'{entry["x_range"][0]:g}-{entry["x_range"][1]:g} ({entry["n_points"]} experimental points)')  # fmt: skip
    if pks:
        click.echo('stored: ' + ', '.join(f'{k}<{v}>' for k, v in pks.items()))


def _r_chi(atoms, curve, parameters: dict, lorch: bool = False) -> dict:
    """R_chi without the profile, with the same grids as the stored analysis."""
    import numpy as np

    from aiida_glassml.analysis import broadened_real_space, compute_rdf, neutron_structure_factor, r_chi
    from aiida_glassml.analysis import real_space_functions, xray_structure_factor

    quantity = parameters['quantity']
    rdf = compute_rdf(atoms, dr=0.02)
    if quantity.startswith('S_'):
        x_model = np.arange(0.3, 20.0 + 1e-9, 0.02)
        compute = neutron_structure_factor if quantity == 'S_neutron' else xray_structure_factor
        _, y_model = compute(rdf, x_model, lorch=lorch)
    elif quantity.endswith('_broadened'):
        functions = broadened_real_space(rdf, 20.0, quantity.split('_')[1], lorch=lorch)
        x_model, y_model = functions['r'], functions['T']
    else:
        kind, weighting = quantity.split('_')
        functions = real_space_functions(rdf, weighting)
        x_model, y_model = functions['r'], functions[kind]
    x_exp, y_exp = curve
    lo, hi = parameters['x_range'] or (max(x_exp.min(), x_model.min()), min(x_exp.max(), x_model.max()))
    value = r_chi(x_model, y_model, x_exp, y_exp, (lo, hi))
    return {'r_chi': value, 'r_chi_unit': 'fraction', 'r_chi_percent': 100.0 * value, 'quantity': quantity,
            'x_range': [float(lo), float(hi)], 'n_points': int(((x_exp >= lo) & (x_exp <= hi)).sum())}  # fmt: skip


def _store(atoms, cutoffs, formers, anions, path, curve=None, r_chi_parameters=None, curve_path=None, lorch=False):
    from aiida import load_profile
    from aiida.manage import get_manager

    if get_manager().get_profile() is None:  # -p PROFILE loads one; otherwise use the default profile
        try:
            load_profile()
        except Exception as exc:  # noqa: BLE001
            fail(f'--store needs an AiiDA profile ({exc}); pass -p PROFILE or run `verdi presto`.')
    from aiida.orm import StructureData

    from aiida_glassml.calcfunctions import analysis_structure as cfs

    structure = StructureData(ase=atoms)
    structure.label = path.name
    parameters = {'cutoffs': cutoffs, 'formers': formers, 'anions': anions, 'lorch': lorch}
    filled = cfs.validate_structure_parameters(structure, parameters)  # before storing anything
    experimental = None
    if curve is not None:
        experimental = cfs.experimental_curve_node(*curve, r_chi_parameters['quantity'], source=curve_path.name)
        span = cfs.r_chi_model_span(structure, filled, r_chi_parameters['quantity'])
        cfs.validate_r_chi_parameters(experimental, r_chi_parameters, span)
    structure.store()
    outputs = cfs.run_structure_analysis(structure, parameters, experimental, r_chi_parameters)
    pks = {'structure': structure.pk, **{key: node.pk for key, node in outputs.items()}}
    results = outputs['results'].get_dict()
    if 'r_chi' in outputs:
        results['r_chi'] = outputs['r_chi'].get_dict()
        pks['experimental'] = experimental.pk
    return results, pks
