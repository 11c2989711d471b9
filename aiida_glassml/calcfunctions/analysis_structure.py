"""Calcfunctions storing structure analysis with provenance: results, g(r), total and partial S(Q), T(r)/G(r) arrays
with units, R_χ against an experimental curve, oxidation states from DFT magnetic moments, and PNG figures made
from the stored arrays. The science lives in :mod:`aiida_glassml.analysis`."""

from __future__ import annotations

import io

import numpy as np
from aiida.engine import calcfunction
from aiida.orm import ArrayData, Dict, SinglefileData, StructureData, TrajectoryData, XyData

from aiida_glassml.analysis import (
    DEFAULT_OXIDATION_BINS,
    AnalysisInputError,
    oxidation_state_counts,
    r_chi,
    require_periodic,
    validate_oxidation_bins,
)
from aiida_glassml.analysis.structure import check_structure_options
from aiida_glassml.analysis.figures_structure import (
    partial_structure_factor_figure,
    r_chi_figure,
    rdf_figure,
    real_space_figure,
    structure_factor_figure,
)
from aiida_glassml.data.training_set import TrainingSetData

ALLOWED_PARAMETERS = ('cutoffs', 'formers', 'anions', 'r_max', 'dr', 'q_max', 'lorch')
#: model curves R_χ can be computed for: y names of the ``structure_factor`` and ``real_space`` outputs
R_CHI_QUANTITIES = ('S_neutron', 'S_xray', 'T_neutron', 'G_neutron', 'T_xray', 'G_xray', 'T_neutron_broadened',
                    'T_xray_broadened')


def _array_name(key: str) -> str:
    return key.replace('-', '_')


def validate_structure_parameters(structure: StructureData, parameters: dict | None) -> dict:
    """Check inputs before anything is stored; return the parameters with defaults filled in."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(ALLOWED_PARAMETERS))
    if unknown:
        raise AnalysisInputError(f'unknown parameters {unknown}; allowed are {list(ALLOWED_PARAMETERS)}.')
    require_periodic(structure.get_ase(), 'structure analysis')
    parameters.setdefault('formers', ['P', 'Fe'])
    parameters.setdefault('anions', ['O', 'S'])
    parameters.setdefault('dr', 0.02)
    parameters.setdefault('q_max', 20.0)
    parameters.setdefault('lorch', False)
    check_structure_options(structure.get_ase(), parameters.get('cutoffs'), parameters['formers'], parameters['anions'])
    return parameters


@calcfunction
def analyse_structure_calcfunction(structure: StructureData, parameters: Dict) -> dict:
    """Outputs: ``results`` (Dict, see :func:`~aiida_glassml.analysis.analyse_structure`), ``rdf`` (ArrayData:
    ``r`` in Å, ``g_A_B`` partial g(r), ``n_A_B`` running coordination of B around A), ``structure_factor``
    (XyData: neutron and X-ray S(Q) against Q in Å⁻¹), ``partial_structure_factors`` (XyData: Faber–Ziman
    ``S_A_B`` against Q) and ``real_space`` (XyData against r in Å: neutron- and X-ray-weighted total ``g``,
    ``T`` = 4πρ₀r g(r) and ``G`` = 4πρ₀r [g(r) − 1] in Å⁻², and ``T_neutron_broadened`` / ``T_xray_broadened``, the
    T(r) an experiment with the same ``q_max`` (and ``lorch``) would measure, for R_χ against experimental T(r))."""
    from aiida_glassml.analysis.jobs import structure_outputs
    from aiida_glassml.parsers.analysis import output_nodes

    return output_nodes(structure_outputs(structure.get_ase(), parameters.get_dict()))


@calcfunction
def plot_rdf(rdf: ArrayData) -> SinglefileData:
    """PNG of the partial g(r) in ``rdf`` (from :func:`analyse_structure_calcfunction`), cutoffs marked."""
    pairs = rdf.base.attributes.get('pairs')
    partials = {key: rdf.get_array(f'g_{_array_name(key)}') for key in pairs}
    png = rdf_figure(rdf.get_array('r'), partials, rdf.base.attributes.get('cutoffs', {}))
    return SinglefileData(io.BytesIO(png), filename='rdf.png')


@calcfunction
def plot_structure_factor(structure_factor: XyData) -> SinglefileData:
    """PNG of the total S(Q) curves in ``structure_factor``, from 2π/r_max on (attribute ``q_min``)."""
    _, q, _ = structure_factor.get_x()
    curves = {name: values for name, values, _ in structure_factor.get_y()}
    window = 'Lorch window' if structure_factor.base.attributes.get('lorch', False) else 'no window'
    png = structure_factor_figure(q, curves, structure_factor.base.attributes.get('q_min', None), window)
    return SinglefileData(io.BytesIO(png), filename='structure_factor.png')


@calcfunction
def plot_partial_structure_factors(partial_structure_factors: XyData) -> SinglefileData:
    """PNG of the Faber–Ziman partial S_ab(Q), stacked."""
    _, q, _ = partial_structure_factors.get_x()
    curves = {name.removeprefix('S_').replace('_', '-'): values for name, values, _ in partial_structure_factors.get_y()}
    png = partial_structure_factor_figure(np.asarray(q), curves, partial_structure_factors.base.attributes.get('q_min', None))
    return SinglefileData(io.BytesIO(png), filename='partial_structure_factors.png')


@calcfunction
def plot_real_space(real_space: XyData) -> SinglefileData:
    """PNG of the neutron- and X-ray-weighted T(r)."""
    _, r, _ = real_space.get_x()
    curves = {name: values for name, values, _ in real_space.get_y() if name.startswith('T_')}
    png = real_space_figure(np.asarray(r), curves, 'T(r) (Å$^{-2}$)')
    return SinglefileData(io.BytesIO(png), filename='real_space.png')


# ------------------------------------------------------------------------------------------------ R_χ


def _xy_curve(node: XyData, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    _, x, _ = node.get_x()
    curves = {y_name: y for y_name, y, _ in node.get_y()}
    return np.asarray(x, dtype=float), np.asarray(curves[name] if name else next(iter(curves.values())), dtype=float)


def experimental_curve_node(x, y, quantity: str, source: str | None = None) -> XyData:
    """An unstored XyData of an experimental curve (x in Å⁻¹ for S(Q)/F(Q), Å for T(r)/G(r))."""
    node = XyData()
    unit = '1/angstrom' if quantity.startswith(('S', 'F')) else 'angstrom'
    node.set_x(np.asarray(x, dtype=float), 'Q' if unit == '1/angstrom' else 'r', unit)
    node.set_y([np.asarray(y, dtype=float)], [quantity], ['dimensionless' if quantity.startswith('S') else 'arb'])
    if source:
        node.base.attributes.set('source', str(source))
    return node


def r_chi_model_span(structure: StructureData, structure_parameters: dict, quantity: str) -> tuple[float, float]:
    """The x span of the model curve ``quantity`` that :func:`analyse_structure_calcfunction` will compute with
    (validated) ``structure_parameters``: Q in Å⁻¹ for S(Q), r (bin centres) in Å for T(r)/G(r)."""
    from aiida_glassml.analysis import perpendicular_widths

    if quantity.startswith('S_'):
        return 0.3, float(structure_parameters['q_max'])
    dr = float(structure_parameters['dr'])
    r_max = structure_parameters.get('r_max')
    if r_max is None:
        half_width = 0.5 * float(perpendicular_widths(structure.get_ase().cell).min())
        r_max = min(float(np.floor(half_width / dr + 1e-9) * dr), half_width)
    n_bins = int(round(float(r_max) / dr))
    return 0.5 * dr, (n_bins - 0.5) * dr


def validate_r_chi_parameters(
    experimental: XyData, parameters: dict | None, model_span: tuple[float, float] | None = None
) -> dict:
    """Check the experimental curve and ``{'quantity', 'x_range'}`` before anything is stored; with ``model_span``
    (see :func:`r_chi_model_span`) also that the range lies on the model curve."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - {'quantity', 'x_range'})
    if unknown:
        raise AnalysisInputError(f'unknown R_chi parameters {unknown}; allowed are ["quantity", "x_range"].')
    parameters.setdefault('quantity', 'S_neutron')
    parameters.setdefault('x_range', None)
    if parameters['quantity'] not in R_CHI_QUANTITIES:
        raise AnalysisInputError(
            f'R_chi quantity {parameters["quantity"]!r} is not computed; choose one of {list(R_CHI_QUANTITIES)}.'
        )
    try:
        x, y = _xy_curve(experimental)
    except (AttributeError, KeyError, StopIteration) as exc:
        raise AnalysisInputError(
            f'the experimental curve has no x/y arrays ({exc}); build it with `experimental_curve_node(x, y, ...)`.'
        ) from exc
    if x.size < 2 or x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AnalysisInputError('the experimental curve needs at least two finite (x, y) points of equal length.')
    if parameters['x_range'] is not None:
        lo, hi = (float(v) for v in parameters['x_range'])
        if not lo < hi:
            raise AnalysisInputError(f'R_chi range {lo}–{hi} is empty; give LOWER < UPPER.')
        if ((x >= lo) & (x <= hi)).sum() < 2:
            raise AnalysisInputError(
                f'fewer than two experimental points lie in {lo}–{hi} (data span {x.min():g}–{x.max():g}); widen '
                'or move the range.'
            )
        parameters['x_range'] = [lo, hi]
    if model_span is not None:
        m_lo, m_hi = model_span
        lo, hi = parameters['x_range'] or (max(x.min(), m_lo), min(x.max(), m_hi))
        if lo < m_lo - 1e-9 or hi > m_hi + 1e-9:
            raise AnalysisInputError(
                f'R_chi range {lo:g}–{hi:g} reaches outside the model {parameters["quantity"]} ({m_lo:g}–{m_hi:g}); '
                'narrow the range (--q-range / x_range), or raise q_max / r_max.'
            )
        if ((x >= lo) & (x <= hi)).sum() < 2:
            raise AnalysisInputError(
                f'fewer than two experimental points lie where the model {parameters["quantity"]} is computed '
                f'({m_lo:g}–{m_hi:g}); check the curve\'s units (Q in 1/Å, r in Å) and the quantity.'
            )
    return parameters


def model_output_for(quantity: str) -> str:
    """Name of the :func:`analyse_structure_calcfunction` output holding ``quantity``."""
    return 'structure_factor' if quantity.startswith('S_') else 'real_space'


@calcfunction
def r_chi_calcfunction(model: XyData, experimental: XyData, parameters: Dict) -> Dict:
    """Wright's R_χ of the ``quantity`` curve of ``model`` (``structure_factor`` or ``real_space`` of
    :func:`analyse_structure_calcfunction`) against ``experimental`` over ``x_range``."""
    params = parameters.get_dict()
    x_model, y_model = _xy_curve(model, params['quantity'])
    x_exp, y_exp = _xy_curve(experimental)
    lo, hi = params['x_range'] or (max(x_exp.min(), x_model.min()), min(x_exp.max(), x_model.max()))
    value = r_chi(x_model, y_model, x_exp, y_exp, (lo, hi))
    n_points = int(((x_exp >= lo) & (x_exp <= hi)).sum())
    return Dict({'r_chi': value, 'r_chi_unit': 'fraction', 'r_chi_percent': 100.0 * value,
                 'quantity': params['quantity'], 'x_range': [float(lo), float(hi)], 'x_unit': model.get_x()[2],
                 'n_points': n_points})  # fmt: skip


@calcfunction
def plot_r_chi(model: XyData, experimental: XyData, r_chi: Dict) -> SinglefileData:
    """Model against experiment with the R_χ range shaded."""
    data = r_chi.get_dict()
    x_model, y_model = _xy_curve(model, data['quantity'])
    x_exp, y_exp = _xy_curve(experimental)
    png = r_chi_figure(x_model, y_model, x_exp, y_exp, tuple(data['x_range']), data['r_chi'], data['quantity'])
    return SinglefileData(io.BytesIO(png), filename='r_chi.png')


def check_r_chi_range(model: XyData, experimental: XyData, parameters: dict) -> None:
    """Raise :class:`AnalysisInputError` if R_χ cannot be computed on the model's grid (before storing it)."""
    x_model, y_model = _xy_curve(model, parameters['quantity'])
    x_exp, y_exp = _xy_curve(experimental)
    r_chi(x_model, y_model, x_exp, y_exp, parameters['x_range'])


# ------------------------------------------------------------------------------------------------ run


def run_structure_analysis(
    structure: StructureData,
    parameters: dict | None = None,
    experimental: XyData | None = None,
    r_chi_parameters: dict | None = None,
) -> dict:
    """Validate, then run the analysis and the figures. Returns the output nodes: results, rdf, structure_factor,
    partial_structure_factors, real_space and their figures; with ``experimental`` also r_chi and r_chi_figure.
    Bad input raises before anything is stored."""
    parameters = validate_structure_parameters(structure, parameters)
    if experimental is not None:
        quantity = (r_chi_parameters or {}).get('quantity', 'S_neutron')
        span = r_chi_model_span(structure, parameters, quantity)
        r_chi_parameters = validate_r_chi_parameters(experimental, r_chi_parameters, span)
    outputs = dict(analyse_structure_calcfunction(structure, Dict(parameters)))
    outputs['rdf_figure'] = plot_rdf(outputs['rdf'])
    outputs['structure_factor_figure'] = plot_structure_factor(outputs['structure_factor'])
    outputs['partial_structure_factors_figure'] = plot_partial_structure_factors(outputs['partial_structure_factors'])
    outputs['real_space_figure'] = plot_real_space(outputs['real_space'])
    if experimental is not None:
        outputs.update(run_r_chi(outputs[model_output_for(r_chi_parameters['quantity'])], experimental,
                                 r_chi_parameters))  # fmt: skip
    return outputs


def run_r_chi(model: XyData, experimental: XyData, parameters: dict) -> dict:
    """R_χ and its figure; the range is checked against the model grid before the experimental curve is stored."""
    check_r_chi_range(model, experimental, parameters)
    r_chi_node = r_chi_calcfunction(model, experimental, Dict(parameters))
    return {'r_chi': r_chi_node, 'r_chi_figure': plot_r_chi(model, experimental, r_chi_node)}


# ------------------------------------------------------------------------------------------------ oxidation states


#: what oxidation states are binned from: DFT magnetic moments (|m|, μB) or Bader charges (e)
OXIDATION_SOURCES = ('moments', 'bader')


def validate_oxidation_parameters(training_set: TrainingSetData, parameters: dict | None) -> dict:
    """Check a training set and ``{'element', 'bins', 'source'}``; fill defaults. ``source`` ``moments`` (default):
    |magnetic moment| bins (V: the thesis PBE0 bins, Fe: :data:`~aiida_glassml.analysis.structure.DEFAULT_FE_BINS`);
    ``bader``: Bader-charge bins (e), which have no defaults (they depend on the functional and the
    pseudopotentials). Raises before anything is stored."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - {'element', 'bins', 'source'})
    if unknown:
        raise AnalysisInputError(
            f'unknown oxidation-state parameters {unknown}; allowed are ["element", "bins", "source"].'
        )
    if not isinstance(training_set, TrainingSetData):
        raise AnalysisInputError(f'expected a TrainingSetData, got {type(training_set).__name__}.')
    source = parameters.setdefault('source', 'moments')
    if source not in OXIDATION_SOURCES:
        raise AnalysisInputError(f'oxidation source {source!r} is unknown; choose one of {list(OXIDATION_SOURCES)}.')
    frameset = training_set.get_frameset()
    if source == 'moments' and not frameset.has_magmoms.any():
        raise AnalysisInputError(
            f'TrainingSetData<{training_set.pk}> has no magnetic moments in any frame; label the frames with a '
            'spin-polarised DFT calculation that writes per-atom moments (e.g. CP2K Mulliken spin, VASP MAGMOM).'
        )
    if source == 'bader' and not frameset.has_bader.any():
        raise AnalysisInputError(
            f'TrainingSetData<{training_set.pk}> has no Bader charges in any frame; label single points with '
            '`bader: {enabled: true}` in the LabelWorkChain settings (CP2K or VASP).'
        )
    return fill_oxidation_bins(parameters, frameset.elements, source)


def fill_oxidation_bins(parameters: dict, elements: list[str], source: str = 'moments',
                        what: str = 'training set') -> dict:  # fmt: skip
    """``parameters`` with ``element`` (default: the first of :data:`DEFAULT_OXIDATION_BINS` among ``elements``) and
    validated ``bins`` (default: that element's moment bins; Bader charges have none) filled in."""
    element = parameters.get('element')
    if element is None:
        element = next((e for e in DEFAULT_OXIDATION_BINS if e in elements), None)
        if element is None:
            raise AnalysisInputError(
                f'no element with default bins ({sorted(DEFAULT_OXIDATION_BINS)}) among {elements}; give '
                'parameters["element"] and parameters["bins"].'
            )
    if element not in elements:
        raise AnalysisInputError(f'element {element!r} is not in the {what} ({elements}); choose one of them.')
    bins = parameters.get('bins')
    if bins is None and source == 'bader':
        raise AnalysisInputError(
            f'Bader-charge bins have no defaults; give parameters["bins"] as [[lower, upper, state], ...] (charge of '
            f'{element} in e), e.g. from the charges of reference compounds computed the same way.'
        )
    if bins is None:
        if element not in DEFAULT_OXIDATION_BINS:
            raise AnalysisInputError(
                f'no default magnetic-moment bins for {element}; give parameters["bins"] as [[lower, upper, state], '
                '...] (|m| in μB).'
            )
        bins = DEFAULT_OXIDATION_BINS[element]
    parameters['element'] = element
    unit = 'charge in e' if source == 'bader' else '|m| in μB'
    parameters['bins'] = [list(b) for b in validate_oxidation_bins(bins, unit)]
    return parameters


@calcfunction
def oxidation_states_calcfunction(training_set: TrainingSetData, parameters: Dict) -> dict:
    """Oxidation states of ``element`` per frame from |magnetic moment| bins (``source`` ``moments``) or Bader-charge
    bins (``bader``). Outputs ``oxidation_states`` (Dict: element, source, bins, per-frame counts
    ``{state: n, "unassigned": n}`` or None for frames without the source's values, totals) and
    ``oxidation_state_counts`` (ArrayData: ``counts`` (n_frames, n_columns), ``has_magmoms`` or ``has_bader``,
    attribute ``columns``)."""
    from ase.data import chemical_symbols

    params = parameters.get_dict()
    source = params.get('source', 'moments')
    frameset = training_set.get_frameset()
    values, present = ((frameset.bader_charges, frameset.has_bader) if source == 'bader' else
                       (frameset.magmoms, frameset.has_magmoms))  # fmt: skip
    bins = [tuple(b) for b in params['bins']]
    columns = [str(state) for _, _, state in bins] + ['unassigned']
    offsets = frameset.offsets
    per_frame, rows = [], np.zeros((frameset.n_frames, len(columns)), dtype=int)
    for index in range(frameset.n_frames):
        if not present[index]:
            per_frame.append(None)
            continue
        sl = slice(offsets[index], offsets[index + 1])
        symbols = [chemical_symbols[z] for z in frameset.numbers[sl]]
        counts = oxidation_state_counts(symbols, values[sl], params['element'], bins)
        per_frame.append(counts)
        rows[index] = [counts[c] for c in columns]
    totals = {c: int(rows[:, k].sum()) for k, c in enumerate(columns)}
    array = ArrayData()
    array.set_array('counts', rows)
    array.set_array('has_bader' if source == 'bader' else 'has_magmoms', np.asarray(present, dtype=bool))
    array.base.attributes.set('columns', columns)
    array.base.attributes.set('element', params['element'])
    array.base.attributes.set('source', source)
    missing = [i for i, c in enumerate(per_frame) if c is None]
    summary = {
        'element': params['element'], 'source': source, 'bins': params['bins'], 'states': columns[:-1],
        'per_frame': per_frame, 'totals': totals,
        ('frames_without_bader' if source == 'bader' else 'frames_without_magmoms'): missing,
    }  # fmt: skip
    return {'oxidation_states': Dict(summary), 'oxidation_state_counts': array}


def run_oxidation_states(training_set: TrainingSetData, parameters: dict | None = None) -> dict:
    """Validate, then count oxidation states per frame; bad input raises before anything is stored."""
    parameters = validate_oxidation_parameters(training_set, parameters)
    return dict(oxidation_states_calcfunction(training_set, Dict(parameters)))


# ------------------------------------------------------------------------------------------------ moments along MD


def validate_trajectory_oxidation_parameters(trajectory: TrajectoryData, parameters: dict | None) -> dict:
    """Check an MD trajectory with per-atom moments (array ``magmoms`` (frames, atoms) in μB, as an MLIP such as
    CHGNet predicts them) and ``{'element', 'bins'}`` (moment bins, defaults as for DFT moments); raise before
    anything is stored."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - {'element', 'bins', 'source'})
    if unknown:
        raise AnalysisInputError(f'unknown oxidation-state parameters {unknown}; allowed are ["element", "bins"].')
    if parameters.pop('source', 'moments') != 'moments':
        raise AnalysisInputError('a trajectory carries predicted moments, not Bader charges: use source `moments`.')
    if 'magmoms' not in trajectory.get_arraynames():
        raise AnalysisInputError(
            f'TrajectoryData<{trajectory.pk}> has no `magmoms`; run the MD with a potential that predicts magnetic '
            'moments (CHGNet: MlipPotentialData.chgnet()).'
        )
    return fill_oxidation_bins(parameters, sorted(set(trajectory.symbols)), what='trajectory')


@calcfunction
def trajectory_oxidation_states_calcfunction(trajectory: TrajectoryData, parameters: Dict) -> dict:
    """Oxidation states of ``element`` in every frame of ``trajectory`` from its predicted |moment| bins. Outputs
    ``oxidation_states`` (Dict: element, bins, per-frame counts, totals, steps) and ``oxidation_state_counts``
    (ArrayData: ``counts`` (n_frames, n_columns), ``step``, attribute ``columns``)."""
    params = parameters.get_dict()
    bins = [tuple(b) for b in params['bins']]
    columns = [str(state) for _, _, state in bins] + ['unassigned']
    symbols = list(trajectory.symbols)
    moments = trajectory.get_array('magmoms')
    per_frame = [oxidation_state_counts(symbols, frame, params['element'], bins) for frame in moments]
    rows = np.array([[counts[c] for c in columns] for counts in per_frame], dtype=int).reshape(-1, len(columns))
    steps = trajectory.get_stepids()
    array = ArrayData()
    array.set_array('counts', rows)
    array.set_array('step', np.asarray(steps))
    array.base.attributes.set_many({'columns': columns, 'element': params['element'], 'source': 'moments'})
    summary = {
        'element': params['element'], 'source': 'moments', 'bins': params['bins'], 'states': columns[:-1],
        'per_frame': per_frame, 'totals': {c: int(rows[:, k].sum()) for k, c in enumerate(columns)},
        'steps': [int(s) for s in steps],
    }  # fmt: skip
    return {'oxidation_states': Dict(summary), 'oxidation_state_counts': array}


def run_trajectory_oxidation_states(trajectory: TrajectoryData, parameters: dict | None = None) -> dict:
    """Validate, then count oxidation states per MD frame from predicted moments; bad input stores nothing."""
    parameters = validate_trajectory_oxidation_parameters(trajectory, parameters)
    return dict(trajectory_oxidation_states_calcfunction(trajectory, Dict(parameters)))


def trajectory_oxidation_parameters(trajectory: TrajectoryData, given: dict | None) -> dict | None:
    """The validated parameters GlassAnalysisWorkChain bins ``trajectory``'s predicted moments with, or None when it
    has none to bin: no ``magmoms``, ``given`` asks for Bader charges (a training set's), or nothing is given and no
    element has default moment bins."""
    given = dict(given or {})
    if 'magmoms' not in trajectory.get_arraynames() or given.get('source', 'moments') != 'moments':
        return None
    if not given and not any(element in DEFAULT_OXIDATION_BINS for element in set(trajectory.symbols)):
        return None
    return validate_trajectory_oxidation_parameters(trajectory, given)
