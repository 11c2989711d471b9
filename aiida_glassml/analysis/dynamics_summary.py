"""Dynamics analysis of one trajectory as one call with a parameter dict: defaults, checks and a JSON-able
summary (D ± err, conductivity, Haven ratio, hops, mobility classes) plus the arrays behind the figures. Used by
the calcfunctions and the ``analyse trajectory`` command. Pure numpy; no AiiDA imports."""

from __future__ import annotations

import numpy as np

from . import dynamics as dyn
from .errors import AnalysisInputError
from .neighbors import perpendicular_widths

DYNAMICS_PARAMETERS = (
    'species', 'temperature', 'timestep_ps', 'fit_window', 'van_hove_times', 'van_hove_species', 'van_hove_r_max',
    'distinct_van_hove', 'charges', 'haven', 'mobility', 'hops', 'chunk_atoms',
)  # fmt: skip
#: formal charges (e) used for Nernst–Einstein when ``charges`` is not given
DEFAULT_CHARGES = {'Li': 1.0, 'Na': 1.0, 'K': 1.0}


def _widths(cell) -> np.ndarray:
    return perpendicular_widths(np.asarray(cell))


def check_temperature(value) -> float:
    """A temperature in K must be finite and > 0: σ_NE ∝ 1/T and the Arrhenius fit uses 1/T."""
    import math

    try:
        temperature = float(value)
    except (TypeError, ValueError):
        raise AnalysisInputError(f'temperature {value!r} must be a number of K, e.g. 700.') from None
    if not math.isfinite(temperature) or temperature <= 0:
        raise AnalysisInputError(f'temperature {value!r} K must be > 0 (absolute temperature, e.g. 700).')
    return temperature


def fill_dynamics_parameters(traj: dyn.Trajectory, parameters: dict | None) -> dict:
    """Check a trajectory and parameters; return parameters with defaults filled in.

    Parameters: ``species`` (list; default all), ``temperature`` (K; needed for conductivity), ``timestep_ps``
    (when the node has no times), ``fit_window`` ([t0, t1] ps, or {species: [t0, t1]}; default automatic),
    ``van_hove_times`` (ps), ``van_hove_species``, ``van_hove_r_max`` (Å), ``distinct_van_hove`` (bool),
    ``charges`` ({species: e}), ``haven`` (bool), ``mobility`` ({species, time, origin, partners, r_max, rings,
    formers, anions, max_ring_size} or None), ``hops`` ({species, hop_distance, concerted_window,
    concerted_distance, smoothing_ps} or None), ``chunk_atoms``.
    """
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(DYNAMICS_PARAMETERS))
    if unknown:
        raise AnalysisInputError(f'unknown dynamics parameters {unknown}; allowed are {list(DYNAMICS_PARAMETERS)}.')
    temperature = parameters.get('temperature')
    if temperature is not None:
        check_temperature(temperature)
    species = parameters.setdefault('species', traj.species)
    for name in species:
        traj.indices(name)
    total = float(traj.times[-1] - traj.times[0])
    window = parameters.get('fit_window')
    windows = window if isinstance(window, dict) else {name: window for name in species}
    for name, value in windows.items():
        if value is not None and not (len(value) == 2 and 0 <= value[0] < value[1] <= total * (1 + 1e-9)):
            raise dyn.TimeWindowError(
                f'fit_window {value} for {name} is outside the trajectory (0 to {total:g} ps) or empty; '
                'give [start, end] in ps inside it.'
            )
    mobile = next((s for s in ('Na', 'Li', 'K') if s in species), species[0])
    parameters.setdefault('van_hove_species', mobile)
    if parameters['van_hove_species'] not in species:
        raise AnalysisInputError(
            f'van_hove_species {parameters["van_hove_species"]!r} is not among the analysed species {species}; '
            'add it to "species" or pick one of them.'
        )
    default_times = sorted({round(total * f / traj.timestep) * traj.timestep for f in (0.01, 0.1, 0.5)} - {0.0})
    parameters.setdefault('van_hove_times', default_times or [traj.timestep])
    for value in parameters['van_hove_times']:
        traj.frame_of_time(float(value), 'van Hove time')
    parameters.setdefault('van_hove_r_max', 8.0)
    parameters.setdefault('distinct_van_hove', False)
    parameters.setdefault('charges', {k: v for k, v in DEFAULT_CHARGES.items() if k in species})
    parameters.setdefault('haven', False)
    parameters.setdefault('mobility', None)
    parameters.setdefault('hops', None)
    parameters.setdefault('chunk_atoms', dyn.DEFAULT_CHUNK_ATOMS)
    needs_cell = parameters['charges'] or parameters['distinct_van_hove'] or parameters['mobility'] is not None
    if needs_cell or traj.wrapped:
        traj.require_cell('this dynamics analysis (unwrapping, volume or distinct van Hove)')
    if parameters['charges'] and parameters.get('temperature') is None:
        raise AnalysisInputError(
            'Nernst-Einstein conductivity needs parameters["temperature"] (K); give it, or set "charges": {} to skip.'
        )
    if parameters['mobility'] is not None:
        mobility = parameters['mobility']
        traj.indices(mobility.get('species', mobile))
        end = float(mobility.get('origin', 0.0)) + float(mobility.get('time', total / 10))
        traj.frame_of_time(end, 'mobility origin + time')
    if parameters['hops'] is not None:
        traj.indices(parameters['hops'].get('species', mobile))
    return parameters


def run_dynamics_analysis(traj: dyn.Trajectory, parameters: dict, progress=None) -> dict:
    """The whole dynamics analysis for parameters from :func:`fill_dynamics_parameters`. Returns
    ``{'results': JSON-able dict, 'arrays': numpy arrays behind the figures}``. ``progress(n_atoms)`` is called
    with the number of atoms in each chunk that finishes the correlation pass."""
    from . import heterogeneity, hops

    species = list(parameters['species'])
    mobile = parameters['van_hove_species']
    result = dyn.analyse_dynamics(
        traj, species=species, per_atom=True, van_hove_times=[float(v) for v in parameters['van_hove_times']],
        van_hove_r_max=float(parameters['van_hove_r_max']), chunk_atoms=int(parameters['chunk_atoms']),
        progress=progress,
    )  # fmt: skip
    window = parameters.get('fit_window')
    results = {
        'temperature': parameters.get('temperature'), 'n_frames': traj.n_frames,
        'duration_ps': float(traj.times[-1] - traj.times[0]), 'counts': result.counts, 'diffusion': {},
    }  # fmt: skip
    fits = {}
    for name in species:
        own = window.get(name) if isinstance(window, dict) else window
        try:
            per_atom = result.per_atom_msd[traj.indices(name)]
            fit = dyn.fit_diffusion(result.times, result.msd[name], own, per_atom_msd=per_atom)
        except dyn.DiffusiveRegimeError as exc:
            results['diffusion'][name] = {'diffusive': False, 'reason': str(exc)}
            continue
        fits[name] = fit
        results['diffusion'][name] = {'diffusive': True, **fit.as_dict()}
    temperature = parameters.get('temperature')
    if parameters['charges'] and temperature:
        volume = traj.volume()
        conductivity = {}
        for name, charge in parameters['charges'].items():
            if name in fits:
                sigma = dyn.nernst_einstein_conductivity(
                    fits[name].D, result.counts[name], volume, float(temperature), float(charge)
                )
                entry = {'sigma_NE_S_cm': sigma, 'charge': float(charge)}
                if parameters['haven']:
                    entry.update(dyn.haven_ratio(result, name, fits[name]))
                conductivity[name] = entry
        results['conductivity'] = conductivity
    arrays = {'times': result.times, 'msd': result.msd, 'windows': {k: f.window for k, f in fits.items()}}
    arrays['van_hove'] = {
        'r': result.van_hove_r, 'times': result.van_hove_times,
        'G_s': result.van_hove_self[mobile], 'P_s': result.radial_van_hove_self(mobile),
    }  # fmt: skip
    arrays['alpha2'] = (result.alpha2_times, result.alpha2)
    if parameters['distinct_van_hove']:
        cell = traj.cell if traj.cell.ndim == 2 else traj.cell[0]
        r_max = min(float(parameters['van_hove_r_max']), dyn._max_cutoff(cell) - 1e-6)
        distinct = dyn.van_hove_distinct(traj, parameters['van_hove_times'], mobile, r_max=r_max)
        arrays['van_hove']['g_d'] = distinct['g_distinct']
        arrays['van_hove']['r_d'] = distinct['r']
    if parameters['mobility'] is not None:
        options = dict(parameters['mobility'])
        name = options.get('species', mobile)
        classes = heterogeneity.classify_mobility(
            traj, name, float(options.get('time', results['duration_ps'] / 10)),
            origin=float(options.get('origin', 0.0)),
        )  # fmt: skip
        frame = heterogeneity.frame_atoms(traj, classes.origin)
        partners = [p for p in options.get('partners', ['Fe', 'P', 'O', 'Na']) if p in traj.species]
        r_max = min(float(options.get('r_max', 8.0)), 0.5 * float(np.min(_widths(frame.cell))) - 1e-6)
        arrays['mobility_rdf'] = heterogeneity.mobility_partial_rdf(frame, classes, partners, r_max=r_max)
        results['mobility'] = classes.as_dict()
        if options.get('rings'):
            # Guttman rings of the configuration at the origin; g(r) of fast and slow ions around their centres
            from .rings import guttman_rings

            formers = [f for f in options.get('formers', ['P', 'Fe']) if f in traj.species]
            rings = guttman_rings(frame, formers=formers, anions=options.get('anions', ['O']),
                                  max_size=int(options.get('max_ring_size', 16)))  # fmt: skip
            around = heterogeneity.mobility_ring_centre_rdf(frame, classes, rings.centres, r_max=r_max)
            arrays['mobility_rdf'].update({'ring_centre_fast': around['fast'], 'ring_centre_slow': around['slow']})
            results['mobility']['n_rings'] = len(rings.centres)
    if parameters['hops'] is not None:
        options = dict(parameters['hops'])
        found = hops.detect_hops(
            traj, options.get('species', mobile), float(options.get('hop_distance', 3.0)),
            concerted_window=float(options.get('concerted_window', 1.0)),
            concerted_distance=options.get('concerted_distance'), smoothing_ps=float(options.get('smoothing_ps', 0.0)),
        )  # fmt: skip
        results['hops'] = found.as_dict()
    return {'results': results, 'arrays': arrays}
