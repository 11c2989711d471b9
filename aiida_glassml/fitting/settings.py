"""Validated pacemaker fit settings.

A flat dict of our own keys (documented in ``docs/fitting.md``) that :mod:`aiida_glassml.fitting.input_yaml` renders
into pacemaker's ``input.yaml``. Defaults follow the NaFePO4 study (Christensen et al., J. Mater. Chem. A 2025).
Every check raises :class:`FitSettingsError` with a message naming the problem and the fix, before anything runs.

No AiiDA imports.
"""

from __future__ import annotations

import copy
import math
import typing as t

#: fs_parameters of the NaFePO4 study: pairs (1, a) for eight densities.
STUDY_FS_PARAMETERS = [1, 1, 1, 0.5, 1, 0.75, 1, 0.25, 1, 0.125, 1, 0.375, 1, 0.875, 1, 2]
#: per-element reference (single-atom) energies of the NaFePO4 study, eV (VASP PBE+U).
NAFEPO4_REFERENCE_ENERGY = {
    'Fe': -0.208448785369, 'Na': -0.0749040330661, 'O': -0.0911142437163, 'P': -0.0973190129812,
}  # fmt: skip

EMBEDDINGS = ('FinnisSinclairShiftedScaled', 'FinnisSinclair')
RADIAL_BASES = ('SBessel', 'ChebExpCos', 'ChebPow')
EVALUATORS = ('pyace', 'tensorpot')
OPTIMIZERS = ('BFGS', 'L-BFGS-B', 'Nelder-Mead')
LADDER_TYPES = ('power_order', 'body_order')
UPFIT_MODES = ('continue', 'extend')
#: pace_activeset drops atoms with force errors above Q3+1.5 IQR unless ``all_atoms``: keep this much headroom.
OUTLIER_HEADROOM = 1.1

DEFAULT_SETTINGS: dict[str, t.Any] = {
    'elements': None,  # None: the elements of the training data
    'cutoff': 6.5,
    'radial_basis': 'SBessel',
    'radial_parameters': [5.25],
    'dcut': 0.01,
    'embedding': 'FinnisSinclairShiftedScaled',
    'ndensity': 8,
    'fs_parameters': STUDY_FS_PARAMETERS,
    'number_of_functions_per_element': 250,
    'nradmax_by_orders': [15, 3, 2, 1],
    'lmax_by_orders': [0, 4, 2, 0],
    'kappa': 0.05,
    'L1_coeffs': 1e-8,
    'L2_coeffs': 1e-8,
    'optimizer': 'BFGS',
    'maxiter': 2000,
    'ladder_step': 5,  # None: fit the full basis at once
    'ladder_type': 'power_order',
    'early_stopping_patience': 50,
    'min_relative_train_loss_per_iter': 5e-5,
    'min_relative_test_loss_per_iter': 1e-5,
    'repulsion': 'auto',
    'reference_energy': 'auto',  # or {element: eV}
    'trainable_parameters': 'ALL',
    'evaluator': 'pyace',
    'batch_size': 100,
    'display_step': 50,
    'seed': 42,
    'test_fraction': 0.1,  # used only when no separate test set is given
    # with an initial potential: `continue` fits its basis from its coefficients (up-fit on grown data);
    # `extend` grows it along the ladder towards the target basis (restart of an interrupted ladder fit)
    'upfit': 'continue',
    'active_set': {'gamma_tolerance': 1.01, 'all_atoms': False, 'maxvol_iters': 300},
}


class FitSettingsError(ValueError):
    """Fit settings, or their combination with the data, cannot give a working fit."""


def validate_settings(settings: dict | None = None) -> dict:
    """Merge ``settings`` over :data:`DEFAULT_SETTINGS` and check each value. Returns the full settings dict."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise FitSettingsError(
            f'unknown fit setting(s) {unknown}; known settings are {sorted(DEFAULT_SETTINGS)} (see docs/fitting.md).'
        )
    merged = copy.deepcopy(DEFAULT_SETTINGS)
    active_set = settings.pop('active_set', None) or {}
    unknown = sorted(set(active_set) - set(merged['active_set']))
    if unknown:
        raise FitSettingsError(f'unknown active_set setting(s) {unknown}; known: {sorted(merged["active_set"])}.')
    merged['active_set'].update(active_set)
    merged.update(copy.deepcopy(settings))
    s = merged

    if s['embedding'] not in EMBEDDINGS:
        raise FitSettingsError(
            f'unknown embedding (npot) {s["embedding"]!r}; use one of {", ".join(EMBEDDINGS)}.'
        )
    if s['radial_basis'] not in RADIAL_BASES:
        raise FitSettingsError(f'unknown radial_basis {s["radial_basis"]!r}; use one of {", ".join(RADIAL_BASES)}.')
    _positive_int(s, 'ndensity')
    if len(s['fs_parameters']) != 2 * s['ndensity']:
        raise FitSettingsError(
            f'fs_parameters has {len(s["fs_parameters"])} numbers but ndensity={s["ndensity"]} needs '
            f'{2 * s["ndensity"]} (one pair per density); give {s["ndensity"]} pairs or change ndensity.'
        )
    if s['embedding'] == 'FinnisSinclair' and s['ndensity'] != 1:
        raise FitSettingsError(
            'plain FinnisSinclair embedding uses one density: set ndensity: 1 and fs_parameters: [1, 1], or use '
            'FinnisSinclairShiftedScaled for several densities.'
        )
    if not _is_number(s['kappa']) or not 0.0 <= s['kappa'] <= 1.0:
        raise FitSettingsError(
            f'kappa must be in [0, 1] (the weight of forces vs energies in the loss; 0.01-0.05 is typical), '
            f'got {s["kappa"]!r}.'
        )
    for key in ('L1_coeffs', 'L2_coeffs', 'min_relative_train_loss_per_iter', 'min_relative_test_loss_per_iter'):
        if not _is_number(s[key]) or s[key] < 0:
            raise FitSettingsError(f'{key} must be a number >= 0, got {s[key]!r}.')
    for key in ('cutoff', 'dcut'):
        if not _is_number(s[key]) or s[key] <= 0:
            raise FitSettingsError(f'{key} must be a positive number of Å, got {s[key]!r}.')
    for key in ('number_of_functions_per_element', 'maxiter', 'early_stopping_patience', 'batch_size',
                'display_step'):  # fmt: skip
        _positive_int(s, key)
    if len(s['nradmax_by_orders']) != len(s['lmax_by_orders']):
        raise FitSettingsError(
            f'nradmax_by_orders ({len(s["nradmax_by_orders"])} orders) and lmax_by_orders '
            f'({len(s["lmax_by_orders"])} orders) must have the same length, one entry per body order.'
        )
    if s['optimizer'] not in OPTIMIZERS:
        raise FitSettingsError(f'unknown optimizer {s["optimizer"]!r}; use one of {", ".join(OPTIMIZERS)}.')
    if s['ladder_step'] is not None and not (
        (isinstance(s['ladder_step'], int) and s['ladder_step'] > 0) or
        (isinstance(s['ladder_step'], list) and s['ladder_step'])
    ):  # fmt: skip
        raise FitSettingsError(
            f'ladder_step must be a positive integer, a list such as [10, 0.02], or null, got {s["ladder_step"]!r}.'
        )
    if s['ladder_type'] not in LADDER_TYPES:
        raise FitSettingsError(f'unknown ladder_type {s["ladder_type"]!r}; use one of {", ".join(LADDER_TYPES)}.')
    if s['evaluator'] not in EVALUATORS:
        raise FitSettingsError(f'unknown evaluator {s["evaluator"]!r}; use pyace or tensorpot.')
    # whether `tensorpot` runs depends on the pacemaker code's environment: checked with the code (fitting.tensorpot)
    if s['upfit'] not in UPFIT_MODES:
        raise FitSettingsError(f'unknown upfit mode {s["upfit"]!r}; use one of {", ".join(UPFIT_MODES)}.')
    if s['test_fraction'] is not None:
        check_test_fraction(s['test_fraction'])
    if not isinstance(s['seed'], int) or isinstance(s['seed'], bool):
        raise FitSettingsError(f'seed must be an integer, got {s["seed"]!r}.')
    reference = s['reference_energy']
    if reference != 'auto':
        if not isinstance(reference, dict) or not all(_is_number(v) for v in reference.values()):
            raise FitSettingsError(
                f'reference_energy must be `auto` or a mapping element -> energy in eV, got {reference!r}.'
            )
    tolerance = s['active_set']['gamma_tolerance']
    if not _is_number(tolerance) or tolerance < 1.0:
        raise FitSettingsError(f'active_set.gamma_tolerance must be >= 1 (MaxVol tolerance, 1.01 typical), got {tolerance!r}.')
    if s['elements'] is not None:
        s['elements'] = list(s['elements'])
    return s


def check_test_fraction(fraction) -> None:
    if not _is_number(fraction) or not 0.0 < float(fraction) < 1.0:
        raise FitSettingsError(
            f'test fraction must be strictly between 0 and 1 (e.g. 0.1 keeps 10% of the frames for testing), got '
            f'{fraction!r}; or give a separate test set.'
        )


def fit_elements(settings: dict, data_elements: t.Iterable[str]) -> list[str]:
    """The elements of the fit: the settings' list, which must equal the data's, or the data's."""
    data_elements = sorted(set(data_elements))
    if settings.get('elements') is None:
        return data_elements
    wanted = sorted(set(settings['elements']))
    if wanted != data_elements:
        only_data = sorted(set(data_elements) - set(wanted))
        only_settings = sorted(set(wanted) - set(data_elements))
        raise FitSettingsError(
            f'the training set contains elements {data_elements} but the fit settings name {wanted} '
            f'(only in data: {only_data}, only in settings: {only_settings}); set `elements` to {data_elements} '
            'or leave it out to use the elements of the data.'
        )
    return list(settings['elements'])


def check_reference_energy(settings: dict, elements: t.Sequence[str]) -> None:
    reference = settings['reference_energy']
    if isinstance(reference, dict):
        missing = sorted(set(elements) - set(reference) - {'shift'})
        if missing:
            raise FitSettingsError(
                f'reference_energy has no value for {missing}; give every element of the fit an energy in eV, or '
                'use reference_energy: auto.'
            )


def check_reference_level(settings: dict, level_of_theory: t.Mapping | None) -> None:
    """The NaFePO4 study's reference energies (protocol ``nafepo4``) are VASP PBE+U single atoms (U(Fe) 5.3 eV, no
    spin): another level of theory puts its energies on another zero, and the fit would spend its basis on the shift.
    Labels of unknown level (imported frames) and of a teacher potential pass."""
    reference = settings.get('reference_energy')
    if not isinstance(reference, dict) or not level_of_theory:
        return
    if any(not math.isclose(float(reference.get(e, math.nan)), value, abs_tol=1e-9)
           for e, value in NAFEPO4_REFERENCE_ENERGY.items()):  # fmt: skip
        return
    engine = level_of_theory.get('engine')
    if engine not in ('cp2k', 'qe', 'vasp'):
        return
    study_like = (engine == 'vasp' and float((level_of_theory.get('hubbard_u') or {}).get('Fe', 0.0)) == 5.3
                  and str(level_of_theory.get('spin', '')).startswith('none'))  # fmt: skip
    if not study_like:
        raise FitSettingsError(
            f'reference_energy is the NaFePO4 study\'s (VASP PBE+U, U(Fe) 5.3 eV, no spin) but these frames were '
            f'labelled by {engine} at another level of theory; use protocol balanced (reference_energy: auto) or give '
            'reference energies of this level.'
        )


def check_dataset_size(settings: dict, train_atom_counts: t.Mapping[str, int],
                       functions_per_element: t.Mapping[str, int] | None = None, origin: str | None = None,
                       fix: str | None = None) -> None:  # fmt: skip
    """The training data must hold more atomic environments than basis functions, overall and for each element
    (``pace_activeset`` fails with "Insufficient atomic environments" otherwise).

    ``functions_per_element``: the basis actually fitted when it is not the settings' (an up-fit that continues an
    initial potential fits that potential's basis, whatever ``number_of_functions_per_element`` says)."""
    if functions_per_element:
        functions = {el: int(functions_per_element.get(el, 0)) for el in train_atom_counts}
        origin = origin or 'the initial potential has'
        fix = fix or ('up-fit from a potential with fewer functions, or fit from scratch (no initial_potential) '
                      'with number_of_functions_per_element at most')
    else:
        n = int(settings['number_of_functions_per_element'])
        functions = {el: n for el in train_atom_counts}
        origin = origin or 'the basis has up to'
        fix = fix or 'lower number_of_functions_per_element to at most'
    n_elements = len(train_atom_counts)
    total_functions = int(sum(functions.values()))
    total_atoms = int(sum(train_atom_counts.values()))
    if total_atoms < total_functions:
        raise FitSettingsError(
            f'the training data has {total_atoms} atoms (atomic environments) but {origin} {total_functions} '
            f'functions ({_describe_functions(functions)}): the dataset is smaller than its number of basis '
            f'functions. Add frames or {fix} {max(total_atoms // max(n_elements, 1), 1)}.'
        )
    headroom = 1.0 if settings['active_set']['all_atoms'] else OUTLIER_HEADROOM
    needed = {el: math.ceil(round(functions[el] * headroom, 6)) for el in functions}
    short = {el: int(n) for el, n in sorted(train_atom_counts.items()) if n < needed[el]}
    if short:
        fewest = min(short.values())
        raise FitSettingsError(
            f'too few atoms of {", ".join(f"{el} ({n})" for el, n in short.items())} in the training data for '
            f'{_describe_functions({el: functions[el] for el in short})}: pace_activeset needs at least '
            f'{", ".join(f"{needed[el]} atomic environments of {el}" for el in short)} and would fail with '
            f'"Insufficient atomic environments". Add frames containing {", ".join(short)} or {fix} '
            f'{max(int(fewest / headroom), 1)}.'
        )


def _describe_functions(functions: t.Mapping[str, int]) -> str:
    values = set(functions.values())
    if len(values) == 1:
        return f'{next(iter(values))} functions per element x {len(functions)} element(s)'
    return ', '.join(f'{el} {n} functions' for el, n in functions.items())


def check_initial_potential(elements: t.Sequence[str], potential_elements: t.Sequence[str]) -> None:
    if sorted(elements) != sorted(potential_elements):
        raise FitSettingsError(
            f'the initial potential covers {sorted(potential_elements)} but the fit is for {sorted(elements)}; '
            'up-fit only from a potential with the same elements, or fit from scratch without initial_potential.'
        )


def _positive_int(settings: dict, key: str) -> None:
    value = settings[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise FitSettingsError(f'{key} must be a positive integer, got {value!r}.')


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
