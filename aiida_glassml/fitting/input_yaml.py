"""Render pacemaker's ``input.yaml`` from validated fit settings (see :mod:`aiida_glassml.fitting.settings`).

No AiiDA imports.
"""

from __future__ import annotations

import re
import typing as t

import yaml

TRAIN_FILENAME = 'train.pckl.gzip'
TEST_FILENAME = 'test.pckl.gzip'
INITIAL_POTENTIAL_FILENAME = 'initial_potential.yaml'
OUTPUT_POTENTIAL_FILENAME = 'output_potential.yaml'

#: species-block keys of pacemaker's inner cutoff / core repulsion, with the values of a bare ACE basis (as pacemaker
#: writes them before `repulsion: auto` adds a ZBL core; see its interim potentials).
BARE_INNER_CUTOFF = {
    'r_in': '0', 'delta_in': '0', 'inner_cutoff_type': 'distance', 'core-repulsion': '[0, 0]',
    'rho_core_cut': '100000', 'drho_core_cut': '250',
}  # fmt: skip
_INNER_CUTOFF_LINE = re.compile(r'^(\s+)(' + '|'.join(map(re.escape, BARE_INNER_CUTOFF)) + r'):[^\n]*$', re.MULTILINE)


def pacemaker_input(
    settings: dict,
    elements: t.Sequence[str],
    train_filename: str = TRAIN_FILENAME,
    test_filename: str | None = TEST_FILENAME,
    initial_potential: str | None = None,
) -> dict:
    """The pacemaker input as a dict. ``settings`` must come from ``validate_settings``."""
    s = settings
    data: dict[str, t.Any] = {'filename': train_filename}
    if test_filename:
        data['test_filename'] = test_filename
    reference = s['reference_energy']
    if reference != 'auto':
        # pacemaker's `auto` also records a per-atom `shift`; keep it when reusing those energies
        reference = {el: float(reference[el]) for el in [*elements, 'shift'] if el in reference}
    data['reference_energy'] = reference

    potential: dict[str, t.Any] = {
        'deltaSplineBins': 0.001,
        'elements': list(elements),
        'embeddings': {
            'ALL': {'npot': s['embedding'], 'fs_parameters': list(s['fs_parameters']), 'ndensity': s['ndensity']}
        },
        'bonds': {
            'ALL': {
                'radbase': s['radial_basis'], 'radparameters': list(s['radial_parameters']), 'rcut': s['cutoff'],
                'dcut': s['dcut'], 'NameOfCutoffFunction': 'cos',
            }
        },  # fmt: skip
        'functions': {
            'number_of_functions_per_element': s['number_of_functions_per_element'],
            'ALL': {'nradmax_by_orders': list(s['nradmax_by_orders']), 'lmax_by_orders': list(s['lmax_by_orders'])},
        },
    }
    continue_basis = bool(initial_potential) and s['upfit'] == 'continue'
    if initial_potential and not continue_basis:
        potential['initial_potential'] = initial_potential

    fit: dict[str, t.Any] = {
        'loss': {'kappa': s['kappa'], 'L1_coeffs': s['L1_coeffs'], 'L2_coeffs': s['L2_coeffs']},
        'optimizer': s['optimizer'],
        'maxiter': s['maxiter'],
        'repulsion': s['repulsion'],
        'trainable_parameters': s['trainable_parameters'],
        'early_stopping_patience': s['early_stopping_patience'],
        'min_relative_train_loss_per_iter': s['min_relative_train_loss_per_iter'],
        'min_relative_test_loss_per_iter': s['min_relative_test_loss_per_iter'],
    }
    if s['ladder_step'] is not None and not continue_basis:
        fit['ladder_step'] = s['ladder_step']
        fit['ladder_type'] = s['ladder_type']

    backend = {'evaluator': s['evaluator'], 'batch_size': s['batch_size'], 'display_step': s['display_step']}
    if continue_basis:  # the initial potential's file is the basis to fit, its coefficients the start
        potential = initial_potential
    return {'seed': s['seed'], 'cutoff': s['cutoff'], 'data': data, 'potential': potential, 'fit': fit,
            'backend': backend}  # fmt: skip


def without_core_repulsion(potential_yaml: str) -> str:
    """A pacemaker potential (``.yaml`` text) with the core repulsion that ``repulsion: auto`` added after its fit
    switched off: the bare ACE expansion its coefficients were fitted as. Everything else is kept byte for byte.

    Fed to an up-fit as is, the old ZBL core (inner cutoff ``r_in`` at the shortest bonds of the *earlier* data)
    acts on every closer contact of the new data and dominates the loss (forces of tens of eV/Å); pacemaker puts a
    new core, fitted to the new data's shortest bonds, on the result anyway."""
    return _INNER_CUTOFF_LINE.sub(lambda m: f'{m[1]}{m[2]}: {BARE_INNER_CUTOFF[m[2]]}', potential_yaml)


def initial_potential_yaml(potential_yaml: str, settings: dict) -> str:
    """The initial potential's file as the job writes it: bare ACE when the fit adds its own core repulsion
    (``repulsion: auto``), unchanged otherwise (then the old core stays part of the model being fitted)."""
    return without_core_repulsion(potential_yaml) if settings['repulsion'] == 'auto' else potential_yaml


def render_input_yaml(settings: dict, elements: t.Sequence[str], **kwargs) -> str:
    """pacemaker ``input.yaml`` text (keys in a fixed order, so the file is reproducible)."""
    header = '# pacemaker input written by aiida-glassml (aiida_glassml.fitting.input_yaml)\n'
    return header + yaml.safe_dump(pacemaker_input(settings, elements, **kwargs), sort_keys=False,
                                   default_flow_style=None)  # fmt: skip
