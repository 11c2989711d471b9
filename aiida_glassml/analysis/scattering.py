"""Structure factors and real-space correlation functions from histogram g(r) (:class:`.structure.RDF`).

Definitions (Faber–Ziman; D. A. Keen, J. Appl. Cryst. 34, 172 (2001)):

- partial S_ab(Q) = 1 + 4πρ₀ ∫₀^rmax r² [g_ab(r) − 1] sin(Qr)/(Qr) M(r) dr, with ρ₀ the total number density and
  M(r) = sin(πr/rmax)/(πr/rmax) (Lorch window) or 1;
- neutron S(Q) = Σ_ab c_a c_b b_a b_b S_ab(Q) / (Σ_a c_a b_a)²;
- X-ray S(Q) = Σ_ab c_a c_b f_a(Q) f_b(Q) S_ab(Q) / (Σ_a c_a f_a(Q))²;
- total g(r) = Σ_ab w_a w_b g_ab(r) / (Σ w)², T(r) = 4πρ₀ r g(r), G(r) = 4πρ₀ r [g(r) − 1] (Keen's D(r));
- R_χ = {Σ_i [y_exp(x_i) − y_model(x_i)]² / Σ_i y_exp(x_i)²}^½ (A. C. Wright, J. Non-Cryst. Solids 159, 264 (1993)).

Sources of tabulated data:

- coherent neutron scattering lengths (fm, natural isotopic abundance): V. F. Sears, "Neutron scattering lengths
  and cross sections", Neutron News 3(3), 26–37 (1992);
- X-ray form factors f(Q) = Σ_{i=1..4} a_i exp(−b_i (Q/4π)²) + c: Cromer–Mann coefficients of the International
  Tables for Crystallography Vol. C (2006), Table 6.1.1.4.
"""

from __future__ import annotations

import typing as t

import numpy as np

from .errors import AnalysisInputError
from .structure import RDF, pair_key

__all__ = (
    'CROMER_MANN',
    'NEUTRON_SCATTERING_LENGTHS',
    'default_q',
    'neutron_structure_factor',
    'partial_structure_factors',
    'broadened_real_space',
    'q_min_for',
    'r_chi',
    'real_space_functions',
    'structure_factor_peaks',
    'xray_form_factor',
    'xray_structure_factor',
)

#: coherent scattering lengths b (fm), Sears, Neutron News 3(3), 26 (1992)
NEUTRON_SCATTERING_LENGTHS = {
    'H': -3.7390, 'Li': -1.90, 'B': 5.30, 'C': 6.6460, 'N': 9.36, 'O': 5.803, 'F': 5.654, 'Na': 3.63, 'Mg': 5.375,
    'Al': 3.449, 'Si': 4.1491, 'P': 5.13, 'S': 2.847, 'Cl': 9.5770, 'K': 3.67, 'Ca': 4.70, 'Ti': -3.438,
    'V': -0.3824, 'Cr': 3.635, 'Mn': -3.73, 'Fe': 9.45, 'Co': 2.49, 'Ni': 10.3, 'Cu': 7.718, 'Zn': 5.680,
    'Ga': 7.288, 'Ge': 8.185, 'As': 6.58, 'Se': 7.970, 'Br': 6.795, 'Rb': 7.09, 'Sr': 7.02, 'Y': 7.75, 'Zr': 7.16,
    'Nb': 7.054, 'Mo': 6.715, 'Ag': 5.922, 'Sn': 6.225, 'Te': 5.80, 'I': 5.28, 'Cs': 5.42, 'Ba': 5.07, 'La': 8.24,
    'W': 4.86, 'Pb': 9.405, 'Bi': 8.532,
}  # fmt: skip

#: Cromer–Mann coefficients (a1, b1, a2, b2, a3, b3, a4, b4, c), International Tables Vol. C, Table 6.1.1.4
CROMER_MANN = {
    'H': (0.489918, 20.6593, 0.262003, 7.74039, 0.196767, 49.5519, 0.049879, 2.20159, 0.001305),
    'Li': (1.1282, 3.9546, 0.7508, 1.0524, 0.6175, 85.3905, 0.4653, 168.261, 0.0377),
    'B': (2.0545, 23.2185, 1.3326, 1.021, 1.0979, 60.3498, 0.7068, 0.1403, -0.1932),
    'C': (2.31, 20.8439, 1.02, 10.2075, 1.5886, 0.5687, 0.865, 51.6512, 0.2156),
    'N': (12.2126, 0.0057, 3.1322, 9.8933, 2.0125, 28.9975, 1.1663, 0.5826, -11.529),
    'O': (3.0485, 13.2771, 2.2868, 5.7011, 1.5463, 0.3239, 0.867, 32.9089, 0.2508),
    'F': (3.5392, 10.2825, 2.6412, 4.2944, 1.517, 0.2615, 1.0243, 26.1476, 0.2776),
    'Na': (4.7626, 3.285, 3.1736, 8.8422, 1.2674, 0.3136, 1.1128, 129.424, 0.676),
    'Mg': (5.4204, 2.8275, 2.1735, 79.2611, 1.2269, 0.3808, 2.3073, 7.1937, 0.8584),
    'Al': (6.4202, 3.0387, 1.9002, 0.7426, 1.5936, 31.5472, 1.9646, 85.0886, 1.1151),
    'Si': (6.2915, 2.4386, 3.0353, 32.3337, 1.9891, 0.6785, 1.541, 81.6937, 1.1407),
    'P': (6.4345, 1.9067, 4.1791, 27.157, 1.78, 0.526, 1.4908, 68.1645, 1.1149),
    'S': (6.9053, 1.4679, 5.2034, 22.2151, 1.4379, 0.2536, 1.5863, 56.172, 0.8669),
    'Cl': (11.4604, 0.0104, 7.1962, 1.1662, 6.2556, 18.5194, 1.6455, 47.7784, -9.5574),
    'K': (8.2186, 12.7949, 7.4398, 0.7748, 1.0519, 213.187, 0.8659, 41.6841, 1.4228),
    'Ca': (8.6266, 10.4421, 7.3873, 0.6599, 1.5899, 85.7484, 1.0211, 178.437, 1.3751),
    'Ti': (9.7595, 7.8508, 7.3558, 0.5, 1.6991, 35.6338, 1.9021, 116.105, 1.2807),
    'V': (10.2971, 6.8657, 7.3511, 0.4385, 2.0703, 26.8938, 2.0571, 102.478, 1.2199),
    'Cr': (10.6406, 6.1038, 7.3537, 0.392, 3.324, 20.2626, 1.4922, 98.7399, 1.1832),
    'Mn': (11.2819, 5.3409, 7.3573, 0.3432, 3.0193, 17.8674, 2.2441, 83.7543, 1.0896),
    'Fe': (11.7695, 4.7611, 7.3573, 0.3072, 3.5222, 15.3535, 2.3045, 76.8805, 1.0369),
    'Co': (12.2841, 4.2791, 7.3409, 0.2784, 4.0034, 13.5359, 2.3488, 71.1692, 1.0118),
    'Ni': (12.8376, 3.8785, 7.292, 0.2565, 4.4438, 12.1763, 2.38, 66.3421, 1.0341),
    'Cu': (13.338, 3.5828, 7.1676, 0.247, 5.6158, 11.3966, 1.6735, 64.8126, 1.191),
    'Zn': (14.0743, 3.2655, 7.0318, 0.2333, 5.1652, 10.3163, 2.41, 58.7097, 1.3041),
    'Ge': (16.0816, 2.8509, 6.3747, 0.2516, 3.7068, 11.4468, 3.683, 54.7625, 2.1313),
    'Se': (17.0006, 2.4098, 5.8196, 0.2726, 3.9731, 15.2372, 4.3543, 43.8163, 2.8409),
}


def default_q(q_max: float = 20.0, dq: float = 0.02, q_min: float = 0.3) -> np.ndarray:
    """Default Q grid (Å⁻¹)."""
    return np.arange(q_min, q_max + dq / 2, dq)


def q_min_for(r_max: float) -> float:
    """2π/r_max (Å⁻¹): below it S(Q) from g(r) cut at r_max holds only truncation ripples."""
    return 2.0 * np.pi / float(r_max)


def structure_factor_peaks(
    q: np.ndarray, s: np.ndarray, q_min: float = 0.0, prominence: float = 0.05, n: int = 3
) -> list[float]:
    """Positions (Å⁻¹) of the first ``n`` maxima of S(Q) above ``q_min`` standing out by ``prominence``."""
    from scipy.signal import find_peaks

    q, s = np.asarray(q, float), np.asarray(s, float)
    keep = q >= q_min
    found, _ = find_peaks(s[keep], prominence=prominence)
    return [round(float(value), 3) for value in q[keep][found][:n]]


def _table_value(table: dict, element: str, name: str, argument: str):
    if element not in table:
        raise AnalysisInputError(
            f'no tabulated {name} for {element}; pass {argument}={{"{element}": ...}} explicitly.'
        )
    return table[element]


def xray_form_factor(element: str, q: np.ndarray, coefficients: t.Sequence[float] | None = None) -> np.ndarray:
    """Atomic X-ray form factor f(Q) (electrons) from Cromer–Mann coefficients (Q in Å⁻¹)."""
    if coefficients is None:  # not `or`: a numpy array has no truth value
        coefficients = _table_value(CROMER_MANN, element, 'X-ray form factor', 'form_factors')
    coefficients = np.asarray(coefficients, dtype=float)
    if coefficients.shape != (9,):
        raise AnalysisInputError(
            f'Cromer–Mann coefficients for {element} must be 9 numbers (a1, b1, ..., a4, b4, c), got shape '
            f'{coefficients.shape}.'
        )
    a, b, c = coefficients[0:8:2], coefficients[1:8:2], coefficients[8]
    s2 = (np.asarray(q, dtype=float) / (4.0 * np.pi)) ** 2
    return (a[:, None] * np.exp(-b[:, None] * s2[None, :])).sum(axis=0) + c


def _scattering_lengths(species: t.Iterable[str], given: dict[str, float] | None) -> dict[str, float]:
    """Coherent b per species: the given value where there is one (0 included), else the Sears table."""
    result = {}
    for s in species:
        value = (given or {}).get(s)
        if value is None:  # not `or`: a given b = 0 (e.g. a null-scattering isotope mix) is a real value
            value = _table_value(NEUTRON_SCATTERING_LENGTHS, s, 'neutron scattering length', 'scattering_lengths')
        result[s] = float(value)
    return result


def partial_structure_factors(
    rdf: RDF, q: np.ndarray | None = None, lorch: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Faber–Ziman partial S_ab(Q) for every unordered species pair. Returns (Q, {"Fe-O": S(Q), ...})."""
    q = default_q() if q is None else np.asarray(q, dtype=float)
    r, dr = rdf.r, np.diff(rdf.edges)
    window = np.sinc(r / rdf.edges[-1]) if lorch else 1.0  # np.sinc(x) = sin(πx)/(πx)
    kernel = np.sinc(np.outer(q, r) / np.pi) * (4.0 * np.pi * rdf.number_density * r**2 * dr * window)[None, :]
    keys = [pair_key(a, b) for a, b in rdf.pairs]
    h = np.array([rdf.g(*key.split('-')) - 1.0 for key in keys])
    transformed = 1.0 + h @ kernel.T
    return q, dict(zip(keys, transformed))


def _weighted_sum(rdf: RDF, partials: dict[str, np.ndarray], weights: dict[str, np.ndarray]) -> np.ndarray:
    c = rdf.concentrations
    total = 0.0
    norm = sum(c[s] * weights[s] for s in rdf.species) ** 2
    for key, s_ab in partials.items():
        a, b = key.split('-')
        multiplicity = 1.0 if a == b else 2.0
        total = total + multiplicity * c[a] * c[b] * weights[a] * weights[b] * s_ab
    return total / norm


def neutron_structure_factor(
    rdf: RDF, q: np.ndarray | None = None, lorch: bool = False, scattering_lengths: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Total neutron S(Q) (Faber–Ziman, → 1 at large Q). Returns (Q, S)."""
    q, partials = partial_structure_factors(rdf, q, lorch)
    return q, _weighted_sum(rdf, partials, _scattering_lengths(rdf.species, scattering_lengths))


def xray_structure_factor(
    rdf: RDF, q: np.ndarray | None = None, lorch: bool = False, form_factors: dict[str, t.Sequence[float]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Total X-ray S(Q) (Faber–Ziman with Q-dependent f(Q)). ``form_factors`` maps element → Cromer–Mann
    coefficients to override the table. Returns (Q, S)."""
    q = default_q() if q is None else np.asarray(q, dtype=float)
    factors = {s: xray_form_factor(s, q, (form_factors or {}).get(s)) for s in rdf.species}
    q, partials = partial_structure_factors(rdf, q, lorch)
    return q, _weighted_sum(rdf, partials, factors)


def real_space_functions(
    rdf: RDF,
    weighting: str = 'neutron',
    scattering_lengths: dict[str, float] | None = None,
    form_factors: dict[str, t.Sequence[float]] | None = None,
) -> dict[str, np.ndarray]:
    """Weighted total g(r), T(r) = 4πρ₀ r g(r) and G(r) = 4πρ₀ r [g(r) − 1] (Å⁻²).

    ``weighting``: ``'neutron'`` (b), ``'xray'`` (f(Q=0), the Q-independent approximation), or ``'number'``;
    ``scattering_lengths`` / ``form_factors`` override the tables. These are unbroadened: for comparison with an
    experimental T(r) use :func:`broadened_real_space`. Returns {"r", "g", "T", "G"}.
    """
    if weighting == 'neutron':
        weights = _scattering_lengths(rdf.species, scattering_lengths)
    elif weighting == 'xray':
        weights = {s: float(xray_form_factor(s, np.zeros(1), (form_factors or {}).get(s))[0]) for s in rdf.species}
    elif weighting == 'number':
        weights = None
    else:
        raise AnalysisInputError(f'unknown weighting {weighting!r}; use "neutron", "xray" or "number".')
    r = rdf.r
    g = rdf.total(weights)
    factor = 4.0 * np.pi * rdf.number_density * r
    return {'r': r, 'g': g, 'T': factor * g, 'G': factor * (g - 1.0)}


def broadened_real_space(
    rdf: RDF,
    q_max: float,
    weighting: str = 'neutron',
    lorch: bool = True,
    dq: float = 0.01,
    scattering_lengths: dict[str, float] | None = None,
    form_factors: dict[str, t.Sequence[float]] | None = None,
) -> dict[str, np.ndarray]:
    """Model T(r) and G(r) as an experiment measures them: the total S(Q) transformed back from 0 to ``q_max`` only,
    G(r) = (2/π) ∫₀^Qmax Q [S(Q) − 1] M(Q) sin(Qr) dQ, T(r) = G(r) + 4πρ₀ r, with M(Q) = sin(πQ/Qmax)/(πQ/Qmax)
    (Lorch) or 1. ``weighting``: ``'neutron'`` or ``'xray'`` (Q-dependent f(Q), as measured). Compare these, not
    :func:`real_space_functions`, with an experimental T(r): the finite Q range broadens every peak.
    Returns {"r", "T", "G"} (Å, Å⁻²)."""
    if not q_max > 0:
        raise AnalysisInputError(f'q_max must be a positive number of 1/Å, got {q_max!r}.')
    q = (np.arange(int(round(q_max / dq))) + 0.5) * dq  # midpoints of [0, q_max]
    if weighting == 'neutron':
        _, s = neutron_structure_factor(rdf, q, scattering_lengths=scattering_lengths)
    elif weighting == 'xray':
        _, s = xray_structure_factor(rdf, q, form_factors=form_factors)
    else:
        raise AnalysisInputError(f'unknown weighting {weighting!r} for a broadened T(r); use "neutron" or "xray".')
    window = np.sinc(q / q_max) if lorch else 1.0
    r = rdf.r
    g_reduced = (2.0 / np.pi) * np.sin(np.outer(r, q)) @ (q * (s - 1.0) * window * dq)
    return {'r': r, 'T': g_reduced + 4.0 * np.pi * rdf.number_density * r, 'G': g_reduced}


def r_chi(
    x_model: np.ndarray,
    y_model: np.ndarray,
    x_exp: np.ndarray,
    y_exp: np.ndarray,
    x_range: tuple[float, float] | None = None,
) -> float:
    """Wright's R_χ of a model curve against an experimental one, on the experimental points inside ``x_range``
    (the model is linearly interpolated onto them), as a fraction (× 100 for the percent quoted in the literature).
    Works for T(r), G(r), S(Q) or F(Q) alike; compare T(r) with :func:`broadened_real_space`."""
    x_model, y_model = np.asarray(x_model, float), np.asarray(y_model, float)
    x_exp, y_exp = np.asarray(x_exp, float), np.asarray(y_exp, float)
    lo, hi = x_range if x_range is not None else (max(x_exp.min(), x_model.min()), min(x_exp.max(), x_model.max()))
    if lo < x_model.min() - 1e-9 or hi > x_model.max() + 1e-9:
        raise AnalysisInputError(
            f'R_chi range {lo}–{hi} reaches outside the model curve ({x_model.min()}–{x_model.max()}); narrow the '
            'range or compute the model on a wider grid.'
        )
    mask = (x_exp >= lo) & (x_exp <= hi)
    if mask.sum() < 2:
        raise AnalysisInputError(f'fewer than two experimental points lie in the range {lo}–{hi}; widen the range.')
    model = np.interp(x_exp[mask], x_model, y_model)
    return float(np.sqrt(np.sum((y_exp[mask] - model) ** 2) / np.sum(y_exp[mask] ** 2)))
