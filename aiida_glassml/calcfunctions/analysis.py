"""Calcfunctions storing dynamics, Arrhenius and extra structure analyses (bond angles, rings) with provenance,
plus PNG figures made from the stored arrays. The science lives in :mod:`aiida_glassml.analysis`; g(r) and S(Q)
come from :mod:`aiida_glassml.calcfunctions.analysis_structure`.

Each ``validate_*`` function checks its inputs and raises :class:`~aiida_glassml.analysis.AnalysisInputError`
before anything is stored; the calcfunctions assume validated input.
"""

from __future__ import annotations

import io

import numpy as np
from aiida.engine import calcfunction
from aiida.orm import ArrayData, Dict, SinglefileData, StructureData, TrajectoryData, XyData

from aiida_glassml.analysis import AnalysisInputError, require_periodic
from aiida_glassml.analysis import dynamics as dyn
from aiida_glassml.analysis import figures_dynamics as figures
from aiida_glassml.analysis.dynamics_summary import _widths, fill_dynamics_parameters, run_dynamics_analysis

STRUCTURE_EXTRA_PARAMETERS = ('cutoffs', 'formers', 'anions', 'triplets', 'max_ring_size', 'ring_species')


def _name(key: str) -> str:
    return key.replace('-', '_')


# ------------------------------------------------------------------------------------------------ trajectories


def trajectory_node_from(traj: dyn.Trajectory) -> TrajectoryData:
    """An unstored TrajectoryData of a :class:`~aiida_glassml.analysis.dynamics.Trajectory` (times in ps)."""
    node = TrajectoryData()
    cells = None
    if traj.cell is not None:
        cells = np.array(np.broadcast_to(traj.cell, (traj.n_frames, 3, 3)), dtype=float)
    node.set_trajectory(
        symbols=[str(s) for s in traj.symbols], positions=np.asarray(traj.positions, dtype=float),
        stepids=np.arange(traj.n_frames, dtype=int), cells=cells, times=np.asarray(traj.times, dtype=float),
        pbc=(True, True, True) if cells is not None else (False, False, False),
    )  # fmt: skip
    if traj.images is not None:
        node.set_array('images', np.asarray(traj.images, dtype=np.int32))
    node.base.attributes.set('wrapped', bool(traj.wrapped))
    node.base.attributes.set('time_unit', 'ps')
    return node


#: frames copied per read when streaming a stored positions array into float32
_STREAM_FRAMES = 64


def _stream_array(node: TrajectoryData, name: str, dtype, memmap_dir: str | None = None) -> np.ndarray:
    """Array ``name`` of ``node`` as ``dtype``, read from the repository ``.npy`` in blocks of frames: no full-size
    copy in the stored dtype (float64 positions would be twice the float32 result) and nothing left in the node's
    array cache. With ``memmap_dir`` the result is an ``np.memmap`` there."""
    with node.base.repository.open(f'{name}.npy', mode='rb') as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, stored = read_header(handle)
        if fortran_order or stored.hasobject or not shape:
            return np.asarray(node.get_array(name), dtype=dtype)
        if memmap_dir is None:
            out = np.empty(shape, dtype=dtype)
        else:
            import pathlib

            out = np.memmap(pathlib.Path(memmap_dir) / f'{name}.{np.dtype(dtype).name}', dtype=dtype, mode='w+',
                            shape=shape)  # fmt: skip
        per_frame = int(np.prod(shape[1:], dtype=np.int64))
        for start in range(0, shape[0], _STREAM_FRAMES):
            stop = min(start + _STREAM_FRAMES, shape[0])
            count = (stop - start) * per_frame
            block = np.frombuffer(handle.read(count * stored.itemsize), dtype=stored, count=count)
            out[start:stop] = block.reshape((stop - start, *shape[1:]))
    if memmap_dir is not None:
        out.flush()
    return out


def trajectory_from_node(node: TrajectoryData, timestep_ps: float | None = None, memmap: bool | None = None,
                         memmap_threshold_bytes: int = dyn.MEMMAP_THRESHOLD_BYTES) -> dyn.Trajectory:  # fmt: skip
    """A float32 :class:`~aiida_glassml.analysis.dynamics.Trajectory` of a TrajectoryData.

    Positions (and an ``images`` array of integer image flags, used for unwrapping) are streamed from the
    repository into float32 (int32), never held as float64. ``memmap``: put them in ``np.memmap`` files in a
    temporary folder (removed with the Trajectory); ``None`` does so when the float32 positions exceed
    ``memmap_threshold_bytes``. The ``wrapped`` attribute (default True) says whether positions need unwrapping.
    Times come from the node's ``times`` array (ps) or, failing that, from ``timestep_ps`` per stored frame."""
    arrays = node.get_arraynames()
    if 'times' in arrays:
        times = node.get_times()
    elif timestep_ps is not None:
        times = np.arange(node.numsteps) * float(timestep_ps)
    else:
        raise AnalysisInputError(
            f'TrajectoryData<{node.pk}> has no times array; give parameters["timestep_ps"] (ps between frames).'
        )
    cells = node.get_cells() if 'cells' in arrays else None
    cell = None
    if cells is not None:
        cell = cells[0] if np.allclose(cells, cells[0]) else cells
    pbc = node.base.attributes.get('pbc', [True, True, True])
    if pbc is not None and not all(pbc):
        cell = None
    shape = node.get_shape('positions')
    if memmap is None:
        memmap = int(np.prod(shape, dtype=np.int64)) * 4 > memmap_threshold_bytes
    folder = None
    if memmap:
        import tempfile

        folder = tempfile.mkdtemp(prefix='glassml-trajectory-')
    try:
        positions = _stream_array(node, 'positions', np.float32, folder)
        images = _stream_array(node, 'images', np.int32, folder) if 'images' in arrays else None
        traj = dyn.Trajectory(
            positions=positions, symbols=np.array(node.symbols), times=times, cell=cell, images=images,
            wrapped=bool(node.base.attributes.get('wrapped', True)),
        )  # fmt: skip
    except BaseException:
        dyn.remove_scratch_folder(folder)
        raise
    return dyn.tie_scratch_folder(traj, folder)


# ------------------------------------------------------------------------------------------------ dynamics


def validate_dynamics_parameters(trajectory: TrajectoryData, parameters: dict | None) -> dict:
    """Check a TrajectoryData and parameters before anything is stored; return the parameters with defaults filled
    in (see :func:`aiida_glassml.analysis.dynamics_summary.fill_dynamics_parameters`)."""
    parameters = dict(parameters or {})
    traj = trajectory_from_node(trajectory, parameters.get('timestep_ps'))
    dyn.check_unwrappable(traj)  # a decimated wrapped trajectory fails here, before anything is stored
    return fill_dynamics_parameters(traj, parameters)


@calcfunction
def analyse_dynamics_calcfunction(trajectory: TrajectoryData, parameters: Dict) -> dict:
    """Outputs: ``results`` (Dict: D ± err per species in Å²/ps and cm²/s with fit windows, Nernst–Einstein σ,
    Haven ratio, hops, mobility classes), ``msd`` (XyData: MSD in Å² per species against t in ps), ``van_hove``
    (ArrayData: r Å, times ps, G_s Å⁻³, P_s = 4πr²G_s Å⁻¹, optional g_d), ``alpha2`` (XyData), and with
    ``mobility`` ``mobility_rdf`` (ArrayData of fast/slow partial g(r))."""
    params = parameters.get_dict()
    traj = trajectory_from_node(trajectory, params.get('timestep_ps'))
    out = run_dynamics_analysis(traj, params)
    arrays = out['arrays']
    msd = XyData()
    msd.set_x(arrays['times'], 'time', 'ps')
    names = sorted(arrays['msd'])
    msd.set_y([arrays['msd'][n] for n in names], [f'msd_{n}' for n in names], ['angstrom^2'] * len(names))
    msd.base.attributes.set('fit_windows', {k: list(v) for k, v in arrays['windows'].items()})
    van_hove = ArrayData()
    units = {'r': 'angstrom', 'times': 'ps', 'G_s': '1/angstrom^3', 'P_s': '1/angstrom', 'g_d': 'dimensionless',
             'r_d': 'angstrom'}  # fmt: skip
    for key, value in arrays['van_hove'].items():
        van_hove.set_array(key, np.asarray(value))
    van_hove.base.attributes.set('units', {k: units[k] for k in arrays['van_hove']})
    van_hove.base.attributes.set('species', params['van_hove_species'])
    alpha_times, alpha = arrays['alpha2']
    alpha2 = XyData()
    alpha2.set_x(alpha_times, 'time', 'ps')
    alpha2.set_y([alpha[n] for n in names], [f'alpha2_{n}' for n in names], ['dimensionless'] * len(names))
    outputs = {'results': Dict(out['results']), 'msd': msd, 'van_hove': van_hove, 'alpha2': alpha2}
    if 'mobility_rdf' in arrays:
        mobility = ArrayData()
        for key, value in arrays['mobility_rdf'].items():
            mobility.set_array(_name(key), np.asarray(value))
        mobility.base.attributes.set('pairs', [k for k in arrays['mobility_rdf'] if k != 'r'])
        mobility.base.attributes.set('units', {'r': 'angstrom', 'g': 'dimensionless'})
        outputs['mobility_rdf'] = mobility
    return outputs


# ------------------------------------------------------------------------------------------------ Arrhenius


def validate_arrhenius_inputs(results: dict, parameters: dict | None) -> dict:
    """``results``: {label: Dict from analyse_dynamics_calcfunction}; needs two or more temperatures."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - {'species', 't_min'})
    if unknown:
        raise AnalysisInputError(f'unknown Arrhenius parameters {unknown}; allowed are ["species", "t_min"].')
    temperatures = []
    for label, node in results.items():
        value = node.get_dict().get('temperature')
        if value is None:
            raise AnalysisInputError(f'dynamics results {label!r} carry no temperature; analyse with "temperature".')
        temperatures.append(float(value))
    if len(set(temperatures)) < 2:
        raise dyn.ArrheniusError(
            f'an Arrhenius fit needs two or more temperatures, got {sorted(set(temperatures))} K. '
            'Give trajectories at several temperatures.'
        )
    parameters.setdefault('species', None)
    parameters.setdefault('t_min', None)
    return parameters


@calcfunction
def arrhenius_calcfunction(parameters: Dict, **results: Dict) -> dict:
    """Fit ln D against 1/T per species from the ``results`` of :func:`analyse_dynamics_calcfunction` at several
    temperatures. Outputs ``arrhenius`` (Dict: per species Ea ± err (eV), D0, deviations, skipped points) and
    ``arrhenius_data`` (ArrayData per species: T (K), D and D_err (Å²/ps), fitted mask, ln deviation)."""
    params = parameters.get_dict()
    rows = {}
    for node in results.values():
        data = node.get_dict()
        for name, entry in data['diffusion'].items():
            if entry.get('diffusive'):
                rows.setdefault(name, []).append((float(data['temperature']), entry['D'], entry['D_err']))
    wanted = params.get('species') or sorted(rows)
    summary, data = {}, ArrayData()
    for name in wanted:
        points = sorted(rows.get(name, []))
        if len({p[0] for p in points}) < 2:
            summary[name] = {'fitted': False, 'reason': f'diffusive at {len(points)} temperature(s); need two or more'}
            continue
        temperatures, D, D_err = (np.array(v) for v in zip(*points))
        try:
            fit = dyn.arrhenius_fit(temperatures, D, D_err, t_min=params.get('t_min'))
        except dyn.ArrheniusError as exc:
            summary[name] = {'fitted': False, 'reason': str(exc)}
            continue
        summary[name] = {'fitted': True, **fit.as_dict()}
        for key, value in (('T', temperatures), ('D', D), ('D_err', D_err), ('fitted', fit.fitted.astype(int)),
                           ('deviation', fit.deviation)):  # fmt: skip
            data.set_array(f'{key}_{name}', np.asarray(value, dtype=float))
    data.base.attributes.set('units', {'T': 'K', 'D': 'angstrom^2/ps', 'D_err': 'angstrom^2/ps', 'deviation': 'ln'})
    data.base.attributes.set('fits', {k: v for k, v in summary.items() if v.get('fitted')})
    return {'arrhenius': Dict(summary), 'arrhenius_data': data}


# ------------------------------------------------------------------------------------------------ structure extras


def validate_structure_extra_parameters(structure: StructureData, parameters: dict | None) -> dict:
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(STRUCTURE_EXTRA_PARAMETERS))
    if unknown:
        raise AnalysisInputError(f'unknown parameters {unknown}; allowed are {list(STRUCTURE_EXTRA_PARAMETERS)}.')
    require_periodic(structure.get_ase(), 'bond angles and rings')
    symbols = set(structure.get_ase().get_chemical_symbols())
    parameters.setdefault('formers', [f for f in ('P', 'Fe', 'V', 'Si') if f in symbols])
    parameters.setdefault('anions', [a for a in ('O', 'S') if a in symbols])
    if not parameters['formers'] or not parameters['anions']:
        raise AnalysisInputError(
            f'no network formers/anions found among {sorted(symbols)}; give parameters["formers"] and ["anions"].'
        )
    default = [f'{a}-{f}-{a}' for f in parameters['formers'] for a in parameters['anions']]
    default += [f'{f}-{a}-{g}' for a in parameters['anions'] for i, f in enumerate(parameters['formers'])
                for g in parameters['formers'][i:]]  # fmt: skip
    parameters.setdefault('triplets', default)
    for triplet in parameters['triplets']:
        parts = triplet.split('-')
        if len(parts) != 3:
            raise AnalysisInputError(f'bond-angle triplet {triplet!r} must look like "O-P-O".')
    parameters.setdefault('max_ring_size', 16)
    parameters.setdefault('cutoffs', None)
    parameters.setdefault('ring_species', None)
    if parameters['ring_species'] is not None and parameters['ring_species'] not in symbols:
        raise AnalysisInputError(
            f'ring_species {parameters["ring_species"]!r} is not in the structure ({sorted(symbols)}); '
            'name a species that is present or set it to None.'
        )
    return parameters


@calcfunction
def analyse_network_calcfunction(structure: StructureData, parameters: Dict) -> dict:
    """Bond-angle distributions and Guttman rings of a glass. Outputs ``bond_angles`` (ArrayData: ``theta`` in
    degrees, ``P_<A>_<C>_<B>`` per degree), ``rings`` (ArrayData: ``sizes``, ``centres`` Å; attributes ring-size
    distribution and cutoffs) and, with ``ring_species``, ``ring_centre_rdf`` (ArrayData: r, g, n)."""
    from aiida_glassml.analysis import bond_angle_distribution, bond_graph, compute_rdf, default_cutoffs, guttman_rings

    params = parameters.get_dict()
    atoms = structure.get_ase()
    half_width = 0.5 * float(np.min(_widths(atoms.cell)))
    cutoffs = params.get('cutoffs') or default_cutoffs(compute_rdf(atoms, r_max=min(6.0, half_width)))
    graph = bond_graph(atoms, cutoffs)
    angles = ArrayData()
    for triplet in params['triplets']:
        theta, p = bond_angle_distribution(graph, triplet)
        angles.set_array('theta', theta)
        angles.set_array(f'P_{_name(triplet)}', p)
    angles.base.attributes.set('triplets', list(params['triplets']))
    angles.base.attributes.set('units', {'theta': 'degree', 'P': '1/degree'})
    angles.base.attributes.set('cutoffs', {k: float(v) for k, v in cutoffs.items()})
    rings = guttman_rings(
        atoms, params.get('cutoffs'), params['formers'], params['anions'], max_size=params['max_ring_size']
    )
    ring_node = ArrayData()
    ring_node.set_array('sizes', np.asarray(rings.sizes, dtype=int))
    ring_node.set_array('centres', np.asarray(rings.centres, dtype=float).reshape(-1, 3))
    ring_node.base.attributes.set('size_distribution', {str(k): v for k, v in rings.size_distribution().items()})
    ring_node.base.attributes.set('cutoffs', {k: float(v) for k, v in rings.cutoffs.items()})
    ring_node.base.attributes.set('units', {'centres': 'angstrom'})
    outputs = {'bond_angles': angles, 'rings': ring_node}
    if params.get('ring_species') and len(rings.centres):
        from aiida_glassml.analysis import ring_centre_rdf

        r_max = min(8.0, half_width - 1e-6)
        r, g, n = ring_centre_rdf(atoms, rings.centres, params['ring_species'], r_max=r_max)
        rdf = ArrayData()
        rdf.set_array('r', r)
        rdf.set_array('g', g)
        rdf.set_array('n', n)
        rdf.base.attributes.set('species', params['ring_species'])
        outputs['ring_centre_rdf'] = rdf
    return outputs


# ------------------------------------------------------------------------------------------------ figures


def _png_node(data: bytes, filename: str) -> SinglefileData:
    return SinglefileData(io.BytesIO(data), filename=filename)


@calcfunction
def plot_msd(msd: XyData) -> SinglefileData:
    """Log-log MSD per species with the diffusive fit windows shaded."""
    _, times, _ = msd.get_x()
    curves = {name.removeprefix('msd_'): values for name, values, _ in msd.get_y()}
    windows = {k: tuple(v) for k, v in msd.base.attributes.get('fit_windows', {}).items()}
    return _png_node(figures.msd_figure(np.asarray(times), curves, windows), 'msd.png')


@calcfunction
def plot_van_hove(van_hove: ArrayData) -> SinglefileData:
    """4πr²G_s(r, t) at each stored time."""
    png = figures.van_hove_figure(van_hove.get_array('r'), van_hove.get_array('times'), van_hove.get_array('P_s'),
                                  van_hove.base.attributes.get('species'), '4πr$^2$G$_s$(r,t) (Å$^{-1}$)')  # fmt: skip
    return _png_node(png, 'van_hove_self.png')


@calcfunction
def plot_alpha2(alpha2: XyData) -> SinglefileData:
    _, times, _ = alpha2.get_x()
    curves = {name.removeprefix('alpha2_'): values for name, values, _ in alpha2.get_y()}
    return _png_node(figures.alpha2_figure(np.asarray(times), curves), 'alpha2.png')


@calcfunction
def plot_mobility_rdf(mobility_rdf: ArrayData) -> SinglefileData:
    """Fast vs slow partial g(r)."""
    curves = {key: mobility_rdf.get_array(_name(key)) for key in mobility_rdf.base.attributes.get('pairs')}
    return _png_node(figures.mobility_rdf_figure(mobility_rdf.get_array('r'), curves), 'mobility_rdf.png')


@calcfunction
def plot_arrhenius(arrhenius_data: ArrayData) -> SinglefileData:
    """ln D against 1000/T for the first fitted species (Na when present)."""
    fits = arrhenius_data.base.attributes.get('fits')
    name = 'Na' if 'Na' in fits else sorted(fits)[0]
    fit = fits[name]
    png = figures.arrhenius_figure(
        arrhenius_data.get_array(f'T_{name}'), arrhenius_data.get_array(f'D_{name}'),
        arrhenius_data.get_array(f'D_err_{name}'), arrhenius_data.get_array(f'fitted_{name}').astype(bool),
        fit['D0_A2_ps'], fit['Ea_eV'], fit['Ea_err_eV'],
    )  # fmt: skip
    return _png_node(png, f'arrhenius_{name}.png')


@calcfunction
def plot_bond_angles(bond_angles: ArrayData) -> SinglefileData:
    theta = bond_angles.get_array('theta')
    curves = {t: (theta, bond_angles.get_array(f'P_{_name(t)}')) for t in bond_angles.base.attributes.get('triplets')}
    return _png_node(figures.bond_angle_figure(curves), 'bond_angles.png')


@calcfunction
def plot_ring_sizes(rings: ArrayData) -> SinglefileData:
    from aiida_glassml.analysis.figures_structure import ring_size_figure

    distribution = {int(k): int(v) for k, v in rings.base.attributes.get('size_distribution').items()}
    return _png_node(ring_size_figure(distribution), 'ring_sizes.png')
