"""The heavy analysis steps as plain functions (no AiiDA imports), shared by the calcfunctions and by the
``AnalysisCalculation`` job, so both store the same science in the same node layout.

Each ``*_outputs`` function returns a plain description of its output nodes, ``{name: description}``, where a
description is one of

* ``{'kind': 'dict', 'value': {...}}`` (a Dict),
* ``{'kind': 'array', 'arrays': {name: ndarray}, 'attributes': {...}}`` (an ArrayData),
* ``{'kind': 'xy', 'x': [name, unit], 'y': [[name, unit], ...], 'arrays': {'x': ndarray, y_name: ndarray, ...},
  'attributes': {...}}`` (an XyData).

The AiiDA layer (:func:`aiida_glassml.parsers.analysis.output_nodes`) turns descriptions into nodes. The job
(``python run_analysis.py``) runs :func:`main`: it reads ``analysis_input.json`` (task, parameters) with the
structure (``structure.npz``) or the trajectory arrays (``trajectory_<name>.npy``, copied from the node's
repository), and writes the descriptions as ``analysis.json`` plus ``analysis.npz``.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import sys
import typing as t

import numpy as np

from . import dynamics as dyn
from .diffusion_series import json_default
from .errors import AnalysisInputError

FILES = {'input': 'analysis_input.json', 'script': 'run_analysis.py', 'structure': 'structure.npz',
         'trajectory': 'trajectory_{name}.npy', 'results': 'analysis.json', 'arrays': 'analysis.npz', 'stdout': 'analysis.out'}  # fmt: skip
TASKS = ('structure', 'network', 'dynamics')
#: arrays of a TrajectoryData the job reads (each as ``<name>.npy``)
TRAJECTORY_ARRAYS = ('positions', 'images', 'cells', 'times')


def _name(key: str) -> str:
    return key.replace('-', '_')


def _xy(x, x_name, x_unit, ys, **attributes) -> dict:
    """An XyData description; ``ys``: [(values, name, unit), ...]."""
    arrays = {'x': np.asarray(x)}
    arrays.update({name: np.asarray(values) for values, name, _ in ys})
    return {'kind': 'xy', 'x': [x_name, x_unit], 'y': [[name, unit] for _, name, unit in ys], 'arrays': arrays,
            'attributes': attributes}  # fmt: skip


def _array(arrays: dict, **attributes) -> dict:
    return {'kind': 'array', 'arrays': {k: np.asarray(v) for k, v in arrays.items()}, 'attributes': attributes}


# ------------------------------------------------------------------------------------------------ structure


def structure_outputs(atoms, params: dict) -> dict:
    """g(r), coordination, total and partial S(Q), T(r)/G(r) of ``atoms`` with validated ``params`` (see
    :func:`aiida_glassml.calcfunctions.analysis_structure.analyse_structure_calcfunction` for the outputs)."""
    from . import (
        analyse_structure,
        broadened_real_space,
        compute_rdf,
        neutron_structure_factor,
        partial_structure_factors,
        q_min_for,
        real_space_functions,
        xray_structure_factor,
    )

    rdf = compute_rdf(atoms, r_max=params.get('r_max'), dr=params['dr'])
    results = analyse_structure(atoms, params.get('cutoffs'), params['formers'], params['anions'])
    arrays, units = {'r': rdf.r}, {'r': 'angstrom'}
    for a, b in rdf.pairs:
        key = _name(f'{a}-{b}')
        arrays[f'g_{key}'] = rdf.g(a, b)
        arrays[f'n_{key}'] = rdf.running_coordination(a, b)
        arrays[f'n_{_name(f"{b}-{a}")}'] = rdf.running_coordination(b, a)
        units[f'g_{key}'] = 'dimensionless'
    rdf_node = _array(arrays, units=units, pairs=[f'{a}-{b}' for a, b in rdf.pairs], cutoffs=results['cutoffs'])
    q = np.arange(0.3, params['q_max'] + 1e-9, 0.02)
    _, s_neutron = neutron_structure_factor(rdf, q, lorch=params['lorch'])
    _, s_xray = xray_structure_factor(rdf, q, lorch=params['lorch'])
    # below 2π/r_max the transform of g(r) cut at r_max holds only truncation ripples; figures start there
    q_min = q_min_for(rdf.edges[-1])
    sq = _xy(q, 'Q', '1/angstrom', [(s_neutron, 'S_neutron', 'dimensionless'), (s_xray, 'S_xray', 'dimensionless')],
             lorch=bool(params['lorch']), r_max=float(rdf.edges[-1]), q_min=q_min)  # fmt: skip
    _, partials = partial_structure_factors(rdf, q, lorch=params['lorch'])
    keys = sorted(partials)
    partial = _xy(q, 'Q', '1/angstrom', [(partials[k], f'S_{_name(k)}', 'dimensionless') for k in keys],
                  pairs=keys, lorch=bool(params['lorch']), q_min=q_min)  # fmt: skip
    curves = []
    for weighting in ('neutron', 'xray'):
        functions = real_space_functions(rdf, weighting)
        for key, unit in (('g', 'dimensionless'), ('T', '1/angstrom^2'), ('G', '1/angstrom^2')):
            curves.append((functions[key], f'{key}_{weighting}', unit))
    for weighting in ('neutron', 'xray'):  # what an experiment measures: S(Q) transformed back up to q_max only
        broadened = broadened_real_space(rdf, params['q_max'], weighting, lorch=params['lorch'])['T']
        curves.append((broadened, f'T_{weighting}_broadened', '1/angstrom^2'))
    real_space = _xy(rdf.r, 'r', 'angstrom', curves, number_density=rdf.number_density,
                     broadening={'q_max': float(params['q_max']), 'lorch': bool(params['lorch'])})  # fmt: skip
    return {'results': {'kind': 'dict', 'value': results}, 'rdf': rdf_node, 'structure_factor': sq,
            'partial_structure_factors': partial, 'real_space': real_space}  # fmt: skip


def network_outputs(atoms, params: dict) -> dict:
    """Bond-angle distributions and Guttman rings of ``atoms`` with validated ``params`` (see
    :func:`aiida_glassml.calcfunctions.analysis.analyse_network_calcfunction` for the outputs)."""
    from . import bond_angle_distribution, bond_graph, compute_rdf, default_cutoffs, guttman_rings
    from .dynamics_summary import _widths

    half_width = 0.5 * float(np.min(_widths(atoms.cell)))
    cutoffs = params.get('cutoffs') or default_cutoffs(compute_rdf(atoms, r_max=min(6.0, half_width)))
    graph = bond_graph(atoms, cutoffs)
    arrays = {}
    for triplet in params['triplets']:
        theta, p = bond_angle_distribution(graph, triplet)
        arrays['theta'] = theta
        arrays[f'P_{_name(triplet)}'] = p
    angles = _array(arrays, triplets=list(params['triplets']), units={'theta': 'degree', 'P': '1/degree'},
                    cutoffs={k: float(v) for k, v in cutoffs.items()})  # fmt: skip
    rings = guttman_rings(
        atoms, params.get('cutoffs'), params['formers'], params['anions'], max_size=params['max_ring_size']
    )
    ring_node = _array(
        {'sizes': np.asarray(rings.sizes, dtype=int), 'centres': np.asarray(rings.centres, dtype=float).reshape(-1, 3)},
        size_distribution={str(k): v for k, v in rings.size_distribution().items()},
        cutoffs={k: float(v) for k, v in rings.cutoffs.items()}, units={'centres': 'angstrom'},
    )  # fmt: skip
    outputs = {'bond_angles': angles, 'rings': ring_node}
    if params.get('ring_species') and len(rings.centres):
        from . import ring_centre_rdf

        r_max = min(8.0, half_width - 1e-6)
        r, g, n = ring_centre_rdf(atoms, rings.centres, params['ring_species'], r_max=r_max)
        outputs['ring_centre_rdf'] = _array({'r': r, 'g': g, 'n': n}, species=params['ring_species'])
    return outputs


# ------------------------------------------------------------------------------------------------ dynamics

#: frames copied per read when streaming a stored positions array into float32
STREAM_FRAMES = 64


def _read_header(handle):
    version = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(handle)


def stream_array(open_array: t.Callable, name: str, dtype, memmap_dir: str | None = None) -> np.ndarray:
    """The ``.npy`` array ``name`` (opened in binary by ``open_array(name)``) as ``dtype``, read in blocks of
    frames: no full-size copy in the stored dtype (float64 positions would be twice the float32 result). With
    ``memmap_dir`` the result is an ``np.memmap`` there."""
    with open_array(name) as handle:
        shape, fortran_order, stored = _read_header(handle)
        if fortran_order or stored.hasobject or not shape:
            handle.seek(0)
            return np.asarray(np.load(handle, allow_pickle=False), dtype=dtype)
        if memmap_dir is None:
            out = np.empty(shape, dtype=dtype)
        else:
            out = np.memmap(pathlib.Path(memmap_dir) / f'{name}.{np.dtype(dtype).name}', dtype=dtype, mode='w+',
                            shape=shape)  # fmt: skip
        per_frame = int(np.prod(shape[1:], dtype=np.int64))
        for start in range(0, shape[0], STREAM_FRAMES):
            stop = min(start + STREAM_FRAMES, shape[0])
            count = (stop - start) * per_frame
            block = np.frombuffer(handle.read(count * stored.itemsize), dtype=stored, count=count)
            out[start:stop] = block.reshape((stop - start, *shape[1:]))
    if memmap_dir is not None:
        out.flush()
    return out


def read_trajectory(open_array: t.Callable, arrays: t.Collection[str], symbols, pbc=None, wrapped: bool = True,
                    timestep_ps: float | None = None, memmap: bool | None = None,
                    memmap_threshold_bytes: int = dyn.MEMMAP_THRESHOLD_BYTES,
                    name: str = 'the trajectory') -> dyn.Trajectory:  # fmt: skip
    """A float32 :class:`~aiida_glassml.analysis.dynamics.Trajectory` from the ``.npy`` arrays of a TrajectoryData
    (``arrays``: the names present, each opened by ``open_array(name)``), as
    :func:`aiida_glassml.calcfunctions.analysis.trajectory_from_node` describes."""

    def load(array):
        with open_array(array) as handle:
            return np.load(handle, allow_pickle=False)

    if 'times' in arrays:
        times = load('times')
    elif timestep_ps is not None:
        with open_array('positions') as handle:
            n_frames = _read_header(handle)[0][0]
        times = np.arange(n_frames) * float(timestep_ps)
    else:
        raise AnalysisInputError(f'{name} has no times array; give parameters["timestep_ps"] (ps between frames).')
    cells = load('cells') if 'cells' in arrays else None
    cell = None
    if cells is not None:
        cell = cells[0] if np.allclose(cells, cells[0]) else cells
    if pbc is not None and not all(pbc):
        cell = None
    with open_array('positions') as handle:
        shape = _read_header(handle)[0]
    if memmap is None:
        memmap = int(np.prod(shape, dtype=np.int64)) * 4 > memmap_threshold_bytes
    folder = None
    if memmap:
        import tempfile

        folder = tempfile.mkdtemp(prefix='glassml-trajectory-')
    try:
        positions = stream_array(open_array, 'positions', np.float32, folder)
        images = stream_array(open_array, 'images', np.int32, folder) if 'images' in arrays else None
        traj = dyn.Trajectory(positions=positions, symbols=np.array(symbols), times=times, cell=cell, images=images,
                              wrapped=bool(wrapped))  # fmt: skip
    except BaseException:
        dyn.remove_scratch_folder(folder)
        raise
    return dyn.tie_scratch_folder(traj, folder)


def dynamics_outputs(traj: dyn.Trajectory, params: dict) -> dict:
    """MSD, D, σ_NE, van Hove, α2 and (with ``mobility``) fast/slow g(r) of ``traj`` with validated ``params`` (see
    :func:`aiida_glassml.calcfunctions.analysis.analyse_dynamics_calcfunction` for the outputs)."""
    from .dynamics_summary import run_dynamics_analysis

    out = run_dynamics_analysis(traj, params)
    arrays = out['arrays']
    names = sorted(arrays['msd'])
    msd = _xy(arrays['times'], 'time', 'ps', [(arrays['msd'][n], f'msd_{n}', 'angstrom^2') for n in names],
              fit_windows={k: list(v) for k, v in arrays['windows'].items()})  # fmt: skip
    units = {'r': 'angstrom', 'times': 'ps', 'G_s': '1/angstrom^3', 'P_s': '1/angstrom', 'g_d': 'dimensionless',
             'r_d': 'angstrom'}  # fmt: skip
    van_hove = _array(arrays['van_hove'], units={k: units[k] for k in arrays['van_hove']},
                      species=params['van_hove_species'])  # fmt: skip
    alpha_times, alpha = arrays['alpha2']
    alpha2 = _xy(alpha_times, 'time', 'ps', [(alpha[n], f'alpha2_{n}', 'dimensionless') for n in names])
    outputs = {'results': {'kind': 'dict', 'value': out['results']}, 'msd': msd, 'van_hove': van_hove,
               'alpha2': alpha2}  # fmt: skip
    if 'mobility_rdf' in arrays:
        outputs['mobility_rdf'] = _array(
            {_name(k): v for k, v in arrays['mobility_rdf'].items()},
            pairs=[k for k in arrays['mobility_rdf'] if k != 'r'], units={'r': 'angstrom', 'g': 'dimensionless'},
        )  # fmt: skip
    return outputs


# ------------------------------------------------------------------------------------------------ the job


def write_structure(folder: pathlib.Path, atoms) -> None:
    """What :func:`read_structure_input` reads back: the atoms of a StructureData (exact float64)."""
    np.savez(pathlib.Path(folder) / FILES['structure'], numbers=atoms.numbers, positions=atoms.positions,
             cell=atoms.cell.array, pbc=atoms.pbc, tags=atoms.get_tags(), masses=atoms.get_masses())  # fmt: skip


def read_structure_input(folder: pathlib.Path):
    from ase import Atoms

    with np.load(pathlib.Path(folder) / FILES['structure']) as data:
        return Atoms(numbers=data['numbers'], positions=data['positions'], cell=data['cell'], pbc=data['pbc'],
                     tags=data['tags'], masses=data['masses'])  # fmt: skip


def run_task(spec: dict, folder: pathlib.Path) -> dict:
    """The output descriptions of the task in ``spec`` (``analysis_input.json``), inputs read from ``folder``."""
    task, params = spec['task'], spec['parameters']
    if task in ('structure', 'network'):
        atoms = read_structure_input(folder)
        return structure_outputs(atoms, params) if task == 'structure' else network_outputs(atoms, params)
    if task == 'dynamics':
        from .dynamics_summary import fill_dynamics_parameters

        meta, folder = spec['trajectory'], pathlib.Path(folder)
        traj = read_trajectory(
            lambda name: open(folder / FILES['trajectory'].format(name=name), 'rb'), meta['arrays'], meta['symbols'],
            meta.get('pbc'), meta.get('wrapped', True), params.get('timestep_ps'), name=meta.get('name', 'the trajectory'),
        )  # fmt: skip
        dyn.check_unwrappable(traj)
        return dynamics_outputs(traj, fill_dynamics_parameters(traj, params))  # filled already: the same parameters
    raise AnalysisInputError(f'unknown analysis task {task!r}; choose one of {list(TASKS)}.')


def write_outputs(folder: pathlib.Path, outputs: dict, **extra) -> None:
    """``analysis.json`` (kinds, values, attributes, names) and ``analysis.npz`` (arrays as ``<output>/<array>``)."""
    arrays, described = {}, {}
    for output, description in outputs.items():
        described[output] = {k: v for k, v in description.items() if k != 'arrays'}
        if 'arrays' in description:
            described[output]['arrays'] = list(description['arrays'])
            for key, value in description['arrays'].items():
                arrays[f'{output}/{key}'] = value
    np.savez(pathlib.Path(folder) / FILES['arrays'], **arrays)
    text = json.dumps({'outputs': described, **extra}, default=json_default, indent=1)
    (pathlib.Path(folder) / FILES['results']).write_text(text)


def read_outputs(written: dict, npz) -> dict:
    """The descriptions written by :func:`write_outputs` (``written``: ``analysis.json`` loaded; ``npz``: an open
    ``np.load`` of ``analysis.npz``)."""
    outputs = written['outputs']
    for output, description in outputs.items():
        if 'arrays' in description:
            description['arrays'] = {key: npz[f'{output}/{key}'] for key in description['arrays']}
    return outputs


def peak_memory_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the task of ``analysis_input.json``; write ``analysis.json`` and ``analysis.npz``. Any failure is written
    as ``{'error': message}`` to ``analysis.json`` (exit status 1), for the parser to report."""
    import time

    argv = list(sys.argv[1:] if argv is None else argv)
    path = pathlib.Path(argv[0] if argv else FILES['input'])
    folder = path.parent
    start = time.perf_counter()
    try:
        spec = json.loads(path.read_text())
        outputs = run_task(spec, folder)
    except Exception as exc:  # noqa: BLE001 - every failure goes to the parser as one line
        (folder / FILES['results']).write_text(json.dumps({'error': f'{type(exc).__name__}: {exc}'}))
        return 1
    with contextlib.suppress(OSError):  # the copied trajectory is not needed any more
        for name in TRAJECTORY_ARRAYS:
            (folder / FILES['trajectory'].format(name=name)).unlink(missing_ok=True)
    write_outputs(folder, outputs, task=spec['task'], wall_time_s=time.perf_counter() - start,
                  peak_memory_mib=peak_memory_mib())  # fmt: skip
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
