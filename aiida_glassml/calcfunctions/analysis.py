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
from aiida_glassml.analysis import jobs
from aiida_glassml.analysis.dynamics_summary import fill_dynamics_parameters
from aiida_glassml.parsers.analysis import output_nodes

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


def trajectory_from_node(node: TrajectoryData, timestep_ps: float | None = None, memmap: bool | None = None,
                         memmap_threshold_bytes: int = dyn.MEMMAP_THRESHOLD_BYTES) -> dyn.Trajectory:  # fmt: skip
    """A float32 :class:`~aiida_glassml.analysis.dynamics.Trajectory` of a TrajectoryData.

    Positions (and an ``images`` array of integer image flags, used for unwrapping) are streamed from the
    repository into float32 (int32), never held as float64. ``memmap``: put them in ``np.memmap`` files in a
    temporary folder (removed with the Trajectory); ``None`` does so when the float32 positions exceed
    ``memmap_threshold_bytes``. The ``wrapped`` attribute (default True) says whether positions need unwrapping.
    Times come from the node's ``times`` array (ps) or, failing that, from ``timestep_ps`` per stored frame.
    The same reader (:func:`aiida_glassml.analysis.jobs.read_trajectory`) runs in the analysis job."""
    return jobs.read_trajectory(
        lambda name: node.base.repository.open(f'{name}.npy', mode='rb'), node.get_arraynames(), node.symbols,
        node.base.attributes.get('pbc', [True, True, True]), bool(node.base.attributes.get('wrapped', True)),
        timestep_ps, memmap, memmap_threshold_bytes, name=f'TrajectoryData<{node.pk}>',
    )  # fmt: skip


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
    return output_nodes(jobs.dynamics_outputs(traj, params))


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
    return output_nodes(jobs.network_outputs(structure.get_ase(), parameters.get_dict()))


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
