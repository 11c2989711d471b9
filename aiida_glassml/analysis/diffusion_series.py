"""Diffusion over a temperature series: the production part of one MD dump reduced to MSD, D, van Hove, per-ion
displacements and fast/slow sets (:func:`analyse_production`, run where the dump lies), then D(T) aggregated over
replicas, Arrhenius fits and Nernst–Einstein σ (:func:`aggregate_series`), and the ring–Na proximity analysis.

Pure numpy; no AiiDA imports. Units: Å, ps, K, D in Å²/ps, σ in S/cm. ``python -m
aiida_glassml.analysis.diffusion_series analysis_input.json`` runs :func:`main` (what ``TrajectoryAnalysisCalculation``
does on the computer that holds the dump).
"""

from __future__ import annotations

import json
import pathlib
import sys
import typing as t

import numpy as np

from . import dynamics as dyn
from .errors import AnalysisInputError

#: input/output file names of the analysis job (the CalcJob and its parser import these)
FILES = {'input': 'analysis_input.json', 'script': 'run_analysis.py', 'trajectory': 'trajectory',
         'results': 'analysis.json', 'arrays': 'analysis.npz'}  # fmt: skip

#: per-run analysis parameters and their defaults (times ps, lengths Å)
RUN_DEFAULTS: dict[str, t.Any] = {
    'species': None,  # all
    'mobile': 'Na',
    'fit_window': None,  # [t0, t1] ps; None: automatic diffusive regime
    'fit_window_fraction': None,  # [a, b] of the production length; used when fit_window is None
    'van_hove_time': 100.0,  # the study's 10^5 fs
    'van_hove_r_max': 8.0,
    'mobility_time': 100.0,
    'mobility_fraction': 0.25,
    'mobility_rdf': False,
    'partners': ['Fe', 'P', 'O', 'Na'],
    'rdf_r_max': 8.0,
    'rings': False,
    'formers': ['P', 'Fe'],
    'anions': ['O'],
    'max_ring_size': 16,
    'ring_distance': 4.0,
    'charges': {'Na': 1.0},
    'memmap_threshold_bytes': dyn.MEMMAP_THRESHOLD_BYTES,
}


def fill_run_parameters(parameters: t.Mapping | None) -> dict:
    """Defaults filled in; unknown keys and non-positive times are refused (one line naming the fix)."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(RUN_DEFAULTS))
    if unknown:
        raise AnalysisInputError(f'unknown trajectory-analysis parameters {unknown}; allowed are {sorted(RUN_DEFAULTS)}.')
    filled = {**RUN_DEFAULTS, **parameters}
    for name in ('van_hove_time', 'mobility_time', 'ring_distance', 'rdf_r_max', 'van_hove_r_max'):
        value = filled[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise AnalysisInputError(f'`{name}` must be a positive number, got {value!r}.')
    if not 0 < filled['mobility_fraction'] <= 0.5:
        raise AnalysisInputError(f'`mobility_fraction` must be in (0, 0.5], got {filled["mobility_fraction"]}.')
    fraction = filled['fit_window_fraction']
    if fraction is not None and not (len(fraction) == 2 and 0 <= fraction[0] < fraction[1] <= 1):
        raise AnalysisInputError(f'`fit_window_fraction` must be [a, b] with 0 <= a < b <= 1, got {fraction}.')
    return filled


# ------------------------------------------------------------------------------------------------ reading


def _frame_step(atoms) -> int:
    for key in ('timestep', 'step'):  # LAMMPS dump / ASE extxyz
        if key in atoms.info:
            return int(atoms.info[key])
    raise AnalysisInputError('a dump frame carries no step number (LAMMPS `timestep` or extxyz `step`).')


def read_production(path, first_step: int, every: int, timestep_ps: float, *, format: str | None = None,  # noqa: A002
                    memmap: bool | None = None, memmap_threshold_bytes: int = dyn.MEMMAP_THRESHOLD_BYTES,
                    scratch: str | pathlib.Path | None = None) -> dyn.Trajectory:  # fmt: skip
    """The frames of a dump at steps ``>= first_step`` that are multiples of ``every`` (evenly spaced, so the FFT
    correlations hold; a forced last frame off that grid is dropped), as a float32 :class:`Trajectory` with times from
    ``first_step``. Frames are streamed one at a time; with ``memmap`` (default: when the file is larger than
    ``memmap_threshold_bytes``) positions and image flags go to raw files in ``scratch`` (a temporary folder
    otherwise, removed with the Trajectory), so memory never holds the frame list."""
    import tempfile

    from .io import iter_trajectory

    path = pathlib.Path(path)
    if memmap is None:
        memmap = path.stat().st_size > memmap_threshold_bytes
    folder = None
    if memmap:
        folder = tempfile.mkdtemp(prefix='glassml-production-', dir=scratch)
    positions, images, cells, steps, first = [], [], [], [], None
    sinks = None
    if folder is not None:
        sinks = [open(pathlib.Path(folder) / name, 'wb') for name in ('positions.f32', 'images.i32')]  # noqa: SIM115
    n_images = 0
    try:
        for atoms in iter_trajectory(path, format=format):
            step = _frame_step(atoms)
            if step < first_step or step % every:
                continue
            if steps and step <= steps[-1]:
                continue  # a frame written twice (a restarted dump)
            first = first or atoms
            frame = np.asarray(atoms.positions, dtype=np.float32)
            flags = atoms.arrays.get('image', atoms.arrays.get('images'))
            flags = None if flags is None else np.asarray(flags, dtype=np.int32)
            if sinks is None:
                positions.append(frame)
                if flags is not None:
                    images.append(flags)
            else:
                sinks[0].write(frame.tobytes())
                if flags is not None:
                    sinks[1].write(flags.tobytes())
            n_images += flags is not None
            steps.append(step)
            cells.append(atoms.cell.array.copy())
    except BaseException:
        dyn.remove_scratch_folder(folder)
        raise
    finally:
        for sink in sinks or ():
            sink.close()
    try:
        if len(steps) < 3:
            raise AnalysisInputError(
                f'{path}: {len(steps)} frame(s) at or after step {first_step} on the {every}-step grid; the production '
                'run needs at least 3 dumped frames (lower dump_interval or lengthen the production).'
            )
        steps_array = np.asarray(steps)
        if np.unique(np.diff(steps_array)).size != 1:
            raise AnalysisInputError(f'{path}: production frames are not evenly spaced (missing frames?); steps '
                                     f'{steps_array[:5].tolist()}...')  # fmt: skip
        times = (steps_array - first_step) * float(timestep_ps)
        cells = np.array(cells)
        cell = cells[0] if np.allclose(cells, cells[0]) else cells
        unwrapped = bool(first.info.get('unwrapped', False))
        shape = (len(steps), len(first), 3)
        has_images = n_images == len(steps) and not unwrapped
        if sinks is None:
            stacked, image_array = np.stack(positions), (np.stack(images) if has_images else None)
        else:
            stacked = np.memmap(pathlib.Path(folder) / 'positions.f32', dtype=np.float32, mode='r', shape=shape)
            image_array = None
            if has_images:
                image_array = np.memmap(pathlib.Path(folder) / 'images.i32', dtype=np.int32, mode='r', shape=shape)
        traj = dyn.Trajectory(positions=stacked, symbols=np.array(first.get_chemical_symbols()), times=times,
                              cell=cell, images=image_array, wrapped=not unwrapped, masses=first.get_masses())  # fmt: skip
    except BaseException:
        dyn.remove_scratch_folder(folder)
        raise
    return dyn.tie_scratch_folder(traj, folder)


# ------------------------------------------------------------------------------------------------ one run


def ring_proximity(atoms, ring_sizes, ring_centres, groups: t.Mapping[str, np.ndarray], distance: float = 4.0) -> dict:
    """Which ring sizes sit near the ions of each group: for every ion, the rings whose centre lies within
    ``distance`` Å (minimum image). Returns per group ``{'size_fraction': {size: share of ion–ring contacts},
    'mean_rings_per_ion', 'nearest_size_fraction': {size: share of ions whose nearest ring has it}, 'n_ions'}``."""
    sizes = np.asarray(ring_sizes, dtype=int)
    centres = np.asarray(ring_centres, dtype=float).reshape(-1, 3)
    result = {}
    for name, index in groups.items():
        index = np.asarray(index, dtype=int)
        if index.size == 0 or sizes.size == 0:
            result[name] = {'n_ions': int(index.size), 'size_fraction': {}, 'nearest_size_fraction': {},
                            'mean_rings_per_ion': 0.0}  # fmt: skip
            continue
        d = _minimum_image_distances(atoms.positions[index], centres, atoms.cell.array)
        near = d < distance
        contacts = sizes[np.nonzero(near)[1]]
        nearest = sizes[np.argmin(d, axis=1)]
        result[name] = {
            'n_ions': int(index.size),
            'mean_rings_per_ion': float(near.sum() / index.size),
            'size_fraction': _fractions(contacts),
            'nearest_size_fraction': _fractions(nearest),
        }
    return result


def _minimum_image_distances(a: np.ndarray, b: np.ndarray, cell: np.ndarray, chunk: int = 64) -> np.ndarray:
    """(len(a), len(b)) minimum-image distances, in chunks of ``a`` (ASE's get_distances holds 27 image copies of
    every pair: 1.5 GB for 429 Na × 1939 ring centres). Exact for distances below half the cell width."""
    inverse = np.linalg.inv(cell)
    fa, fb = a @ inverse, b @ inverse
    out = np.empty((len(a), len(b)))
    for start in range(0, len(a), chunk):
        step = fb[None, :, :] - fa[start : start + chunk, None, :]
        step -= np.rint(step)
        out[start : start + chunk] = np.linalg.norm(step @ cell, axis=-1)
    return out


def _fractions(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    found, counts = np.unique(values, return_counts=True)
    return {str(int(v)): float(c / values.size) for v, c in zip(found, counts)}


def glass_ring_proximity(atoms, parameters: t.Mapping | None = None, groups: t.Mapping | None = None) -> dict:
    """Guttman rings of ``atoms`` and :func:`ring_proximity` of the mobile ions (or ``groups``) to them."""
    from .rings import guttman_rings

    p = fill_run_parameters(parameters)
    symbols = np.array(atoms.get_chemical_symbols())
    rings = guttman_rings(atoms, formers=[f for f in p['formers'] if f in symbols],
                          anions=[a for a in p['anions'] if a in symbols], max_size=int(p['max_ring_size']))  # fmt: skip
    groups = groups or {'all': np.flatnonzero(symbols == p['mobile'])}
    return {'ring_size_distribution': {str(k): v for k, v in rings.size_distribution().items()},
            'distance_A': float(p['ring_distance']),
            'groups': ring_proximity(atoms, rings.sizes, rings.centres, groups, float(p['ring_distance']))}  # fmt: skip


def analyse_production(traj: dyn.Trajectory, temperature: float, parameters: t.Mapping | None = None) -> dict:
    """MSD per species, D ± err (per-atom standard error), Nernst–Einstein σ, the self van Hove function of the
    mobile species at ``van_hove_time``, per-ion displacements over ``mobility_time`` with the fast/slow
    ``mobility_fraction`` sets and, when asked, their partial g(r) and the ring proximity of each set.

    Returns ``{'results': JSON-able dict, 'arrays': {name: ndarray}}`` (arrays: ``times``, ``msd_<X>``, ``r``,
    ``G_s``, ``P_s``, ``ion_index``, ``displacement``, ``fast``, ``slow`` and ``rdf_*``)."""
    from . import heterogeneity
    from .dynamics_summary import fill_dynamics_parameters, run_dynamics_analysis

    p = fill_run_parameters(parameters)
    duration = float(traj.times[-1] - traj.times[0])
    mobile = p['mobile']
    traj.indices(mobile)
    for name in ('van_hove_time', 'mobility_time'):
        if p[name] > duration * (1 + 1e-9):
            raise dyn.TimeWindowError(f'`{name}` {p[name]:g} ps is longer than the production run ({duration:g} ps); '
                                      'lower it or lengthen the production.')  # fmt: skip
    window = p['fit_window']
    if window is None and p['fit_window_fraction'] is not None:
        a, b = p['fit_window_fraction']
        window = [a * duration, b * duration]
    van_hove_time = round(float(p['van_hove_time']) / traj.timestep) * traj.timestep
    dynamics = fill_dynamics_parameters(traj, {
        'species': p['species'] or traj.species, 'temperature': float(temperature), 'fit_window': window,
        'van_hove_times': [van_hove_time], 'van_hove_species': mobile, 'van_hove_r_max': p['van_hove_r_max'],
        'charges': {k: v for k, v in p['charges'].items() if k in traj.species},
    })  # fmt: skip
    out = run_dynamics_analysis(traj, dynamics)
    results, raw = out['results'], out['arrays']
    results['volume_A3'] = traj.volume()
    results['van_hove_time_ps'] = van_hove_time
    arrays = {'times': np.asarray(raw['times'], dtype=float)}
    for name, values in raw['msd'].items():
        arrays[f'msd_{name}'] = np.asarray(values, dtype=float)
    arrays['r'] = raw['van_hove']['r']
    arrays['G_s'] = raw['van_hove']['G_s'][0]
    arrays['P_s'] = raw['van_hove']['P_s'][0]

    classes = heterogeneity.classify_mobility(traj, mobile, float(p['mobility_time']),
                                              fraction=float(p['mobility_fraction']))  # fmt: skip
    arrays.update(ion_index=classes.indices, displacement=classes.displacement, fast=classes.fast, slow=classes.slow)
    results['mobility'] = classes.as_dict()
    if p['mobility_rdf'] or p['rings']:
        frame = heterogeneity.frame_atoms(traj, 0.0)
        half = 0.5 * float(np.min(perpendicular_widths(frame.cell))) - 1e-6
        if p['mobility_rdf']:
            partners = [x for x in p['partners'] if x in traj.species]
            rdf = heterogeneity.mobility_partial_rdf(frame, classes, partners, r_max=min(float(p['rdf_r_max']), half))
            arrays.update({f'rdf_{key.replace("-", "_")}': value for key, value in rdf.items()})
            results['mobility_rdf_pairs'] = [k for k in rdf if k != 'r']
        if p['rings']:
            groups = {'all': classes.indices, 'fast': classes.fast, 'slow': classes.slow}
            results['ring_proximity'] = glass_ring_proximity(frame, p, groups)
    return {'results': results, 'arrays': arrays}


def perpendicular_widths(cell) -> np.ndarray:
    from .neighbors import perpendicular_widths as widths

    return widths(np.asarray(cell))


def peak_memory_mib() -> float:
    """Peak resident memory of this process (MiB, Linux ``ru_maxrss``)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the analysis described by ``analysis_input.json``; write ``analysis.json`` and ``analysis.npz``. A bad
    input or trajectory is written as ``{'error': message}`` to ``analysis.json`` (exit status 1)."""
    import time

    argv = list(sys.argv[1:] if argv is None else argv)
    path = pathlib.Path(argv[0] if argv else FILES['input'])
    folder = path.parent
    spec = json.loads(path.read_text())
    start = time.perf_counter()
    try:
        parameters = fill_run_parameters(spec.get('parameters'))
        traj = read_production(
            folder / spec['trajectory'], int(spec['first_step']), int(spec['every']), float(spec['timestep_ps']),
            format=spec.get('format'), memmap_threshold_bytes=int(parameters['memmap_threshold_bytes']), scratch=folder,
        )  # fmt: skip
        out = analyse_production(traj, float(spec['temperature']), parameters)
    except (AnalysisInputError, OSError, ValueError) as exc:
        (folder / FILES['results']).write_text(json.dumps({'error': f'{type(exc).__name__}: {exc}'}))
        return 1
    results = out['results']
    results.update(label=spec.get('label'), variant=spec.get('variant'), replica=spec.get('replica'),
                   first_step=int(spec['first_step']), wall_time_s=time.perf_counter() - start,
                   peak_memory_mib=peak_memory_mib(), n_atoms=int(traj.n_atoms))  # fmt: skip
    np.savez(folder / FILES['arrays'], **out['arrays'])
    (folder / FILES['results']).write_text(json.dumps(results, default=json_default, indent=1))
    return 0


def json_default(value):
    """``json.dumps`` default for numpy scalars, arrays and tuples (the analysis jobs' results files)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f'not JSON-serialisable: {type(value).__name__}')


# ------------------------------------------------------------------------------------------------ the series


def combine_replicas(values: t.Sequence[float], errors: t.Sequence[float]) -> tuple[float, float]:
    """Mean over replicas; its uncertainty is the replica standard error and the propagated per-replica errors
    added in quadrature (with one replica: its own error)."""
    values, errors = np.asarray(values, float), np.asarray(errors, float)
    mean = float(values.mean())
    propagated = float(np.sqrt(np.nansum(errors**2)) / values.size)
    scatter = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0
    return mean, float(np.hypot(scatter, propagated))


def aggregate_series(runs: t.Sequence[t.Mapping], *, t_min: float | None = None,
                     conductivity_temperature: float | None = None, charges: t.Mapping | None = None) -> dict:  # fmt: skip
    """D(T) per species per heating variant (and ``all`` variants pooled), mean over replicas with uncertainty;
    Arrhenius fits over all temperatures and over T >= ``t_min`` (Ea ± err, D0, ln deviation of every point from the
    high-T fit); Nernst–Einstein σ at ``conductivity_temperature`` from the aggregated D.

    ``runs``: per-run results of :func:`analyse_production` with ``temperature`` and ``variant``."""
    charges = dict(charges or {'Na': 1.0})
    groups: dict[str, dict[float, list]] = {}
    for run in runs:
        for variant in (run['variant'], 'all'):
            groups.setdefault(variant, {}).setdefault(float(run['temperature']), []).append(run)
    diffusion, arrhenius, conductivity = {}, {}, {}
    for variant, by_t in sorted(groups.items()):
        table = {}
        species = sorted({s for runs_t in by_t.values() for r in runs_t for s in r['diffusion']})
        for name in species:
            rows = []
            for temperature in sorted(by_t):
                fits = [r['diffusion'].get(name, {}) for r in by_t[temperature]]
                good = [f for f in fits if f.get('diffusive')]
                row = {'T': temperature, 'n_replicas': len(fits), 'n_diffusive': len(good),
                       'D_replicas': [f.get('D') for f in fits]}  # fmt: skip
                if good:
                    D, D_err = combine_replicas([f['D'] for f in good], [f['D_err'] for f in good])
                    row.update(D=D, D_err=D_err, D_cm2_s=D * dyn.CM2_S_PER_A2_PS, D_err_cm2_s=D_err * dyn.CM2_S_PER_A2_PS)
                rows.append(row)
            table[name] = rows
            arrhenius.setdefault(variant, {})[name] = _arrhenius_pair(rows, t_min)
        diffusion[variant] = table
        if conductivity_temperature is not None and float(conductivity_temperature) in by_t:
            at_t = by_t[float(conductivity_temperature)]
            volume = float(np.mean([r['volume_A3'] for r in at_t]))
            entry = {}
            for name, charge in charges.items():
                row = next((r for r in table.get(name, []) if r['T'] == float(conductivity_temperature)), None)
                if row is None or 'D' not in row:
                    continue
                n_ions = int(at_t[0]['counts'][name])
                sigma = dyn.nernst_einstein_conductivity(row['D'], n_ions, volume, float(conductivity_temperature),
                                                         float(charge))  # fmt: skip
                entry[name] = {'sigma_NE_S_cm': sigma, 'sigma_NE_err_S_cm': sigma * row['D_err'] / row['D'],
                               'charge': float(charge), 'n_ions': n_ions, 'volume_A3': volume}  # fmt: skip
            conductivity[variant] = {'temperature_K': float(conductivity_temperature), 'species': entry}
    return {'diffusion': diffusion, 'arrhenius': arrhenius, 'conductivity': conductivity}


def _arrhenius_pair(rows: list[dict], t_min: float | None) -> dict:
    points = [r for r in rows if 'D' in r and r['D'] > 0]
    temperatures = np.array([r['T'] for r in points])
    D = np.array([r['D'] for r in points])
    D_err = np.array([r['D_err'] for r in points])
    entry = {}
    for key, limit in (('all', None), ('high', t_min)):
        try:
            fit = dyn.arrhenius_fit(temperatures, D, D_err, t_min=limit)
        except dyn.ArrheniusError as exc:
            entry[key] = {'fitted': False, 'reason': str(exc)}
            continue
        data = fit.as_dict()
        data.update(fitted_points=data.pop('fitted'), fitted=True)
        below = ~fit.fitted
        data['low_T_deviation'] = {str(float(T)): float(d) for T, d in zip(temperatures[below], fit.deviation[below])}
        entry[key] = data
    return entry


if __name__ == '__main__':
    sys.exit(main())
