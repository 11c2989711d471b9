"""``pace_activeset`` settings and command line (MaxVol active set of an ACE potential). No AiiDA imports.

Used by :class:`~aiida_glassml.calculations.active_set.ActiveSetCalculation` (an active set for an existing potential)
and by :class:`~aiida_glassml.calculations.pacemaker.PacemakerCalculation` (the active set right after a fit).
"""

from __future__ import annotations

import math
import typing as t

from aiida_glassml.fitting.settings import DEFAULT_SETTINGS, FitSettingsError, check_dataset_size

#: pace_activeset options: MaxVol tolerance, every atom (``-a``) or pacemaker's outlier-filtered ones, MaxVol iterations.
DEFAULT_ACTIVE_SET_SETTINGS: dict[str, t.Any] = dict(DEFAULT_SETTINGS['active_set'])


def validate_active_set_settings(settings: t.Mapping | None = None) -> dict:
    """Merge ``settings`` over :data:`DEFAULT_ACTIVE_SET_SETTINGS` and check the values."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_ACTIVE_SET_SETTINGS))
    if unknown:
        raise FitSettingsError(
            f'unknown active-set setting(s) {unknown}; known: {sorted(DEFAULT_ACTIVE_SET_SETTINGS)}.'
        )
    merged = {**DEFAULT_ACTIVE_SET_SETTINGS, **settings}
    tolerance = merged['gamma_tolerance']
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) \
            or tolerance < 1.0:  # fmt: skip
        raise FitSettingsError(
            f'gamma_tolerance must be >= 1 (MaxVol tolerance, 1.01 typical), got {tolerance!r}.'
        )
    if not isinstance(merged['all_atoms'], bool):
        raise FitSettingsError(f'all_atoms must be true or false, got {merged["all_atoms"]!r}.')
    iters = merged['maxvol_iters']
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise FitSettingsError(f'maxvol_iters must be a positive integer (300 typical), got {iters!r}.')
    return merged


def check_active_set_data(settings: t.Mapping, atom_counts: t.Mapping[str, int],
                          functions_per_element: t.Mapping[str, int]) -> None:  # fmt: skip
    """The data must hold at least as many environments of each element as the potential has functions for it
    (``pace_activeset`` fails with "Insufficient atomic environments" otherwise)."""
    check_dataset_size({'active_set': dict(settings)}, atom_counts, functions_per_element,
                       origin='the potential has', fix='use a potential with fewer functions per element, at most')


def activeset_cmdline(settings: t.Mapping, data_filename: str, potential_filename: str) -> list[str]:
    """Arguments of ``pace_activeset`` (it writes ``<potential stem>.asi`` next to the potential)."""
    arguments = ['-d', data_filename, '-g', str(settings['gamma_tolerance']), '-i', str(settings['maxvol_iters'])]
    if settings['all_atoms']:
        arguments.append('-a')
    return [*arguments, potential_filename]
