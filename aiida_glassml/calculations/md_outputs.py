"""The node layout shared by every MD CalcJob (LAMMPS and ASE), so the work chains above do not care which engine ran.

Names, units and pure helpers are in :mod:`aiida_glassml.md.outputs`; this module holds the AiiDA side. Use in a
CalcJob's ``define``::

    define_md_inputs(spec)        # structure, protocol (Dict of MDProtocol.to_dict()), trajectory_frames
    define_md_outputs(spec)
    define_md_exit_codes(spec)

and in its parser build the nodes with :func:`thermo_array`, :func:`gamma_array`, :func:`trajectory_from_frames`
and :func:`results_dict` (which checks the keys). Outputs:

``thermo`` (ArrayData)
    1-D arrays, one entry per thermo line, names and units in :data:`~aiida_glassml.md.outputs.THERMO_ARRAYS`.
``trajectory`` (TrajectoryData)
    decimated to at most ``trajectory_frames`` frames (evenly spaced, last frame kept); the full dump stays as a
    file in ``retrieved`` (name in ``results['full_trajectory_file']``) and is never loaded whole into memory.
    Positions are wrapped into the cell, with the integer array ``images`` and the attribute ``wrapped=True``:
    ``unwrapped = positions + images @ cell`` (:func:`aiida_glassml.md.outputs.unwrap`), the same for both engines.
``structure`` (StructureData)
    the final structure.
``gamma`` (ArrayData, only with gamma tracking)
    arrays ``step`` and ``max_gamma`` (max per-atom extrapolation grade every ``GammaTracking.interval`` steps).
``extrapolative_trajectory`` (TrajectoryData, only with gamma tracking and when a frame reached ``gamma_lo``)
    the frames with max gamma ≥ ``gamma_lo``: candidates for active-learning selection; arrays ``max_gamma`` and
    ``images`` (same layout as ``trajectory``).
``results`` (Dict)
    keys in :data:`~aiida_glassml.md.outputs.RESULTS_KEYS`; ``stop_reason`` is one of ``STOP_REASONS``.

Exit codes (:func:`define_md_exit_codes`): 3xx cannot be fixed by rerunning, 4xx can be retried with changed
settings (see ``LammpsMDBaseWorkChain``). A gamma halt is 350: rerunning the same potential would halt again, the fix
is to retrain it (the active-learning loop treats 350 as an expected outcome and uses its outputs, which are
attached as for a completed run).
"""

from __future__ import annotations

import typing as t

import numpy as np
from aiida import orm

from aiida_glassml.md.outputs import (
    DEFAULT_TRAJECTORY_FRAMES,
    IMAGES_DTYPE,
    RESULTS_KEYS,
    STOP_REASONS,
    THERMO_ARRAYS,
)

__all__ = (
    'define_md_exit_codes', 'define_md_inputs', 'define_md_outputs', 'gamma_array', 'results_dict', 'thermo_array',
    'trajectory_from_frames', 'validate_protocol_node',
)  # fmt: skip


def define_md_inputs(spec) -> None:
    """Inputs every MD CalcJob shares: ``structure``, ``protocol`` (Dict) and ``trajectory_frames`` (Int)."""
    spec.input('structure', valid_type=orm.StructureData, help='Starting structure.')
    spec.input(
        'protocol', valid_type=orm.Dict, validator=validate_protocol_node,
        help='MD protocol: `aiida_glassml.md.protocol.MDProtocol(...).to_dict()`.',
    )  # fmt: skip
    spec.input(
        'trajectory_frames', valid_type=orm.Int, default=lambda: orm.Int(DEFAULT_TRAJECTORY_FRAMES),
        help='At most this many frames go into the `trajectory` output node; the full dump stays in `retrieved`.',
    )  # fmt: skip


def validate_protocol_node(value, _ctx=None) -> str | None:
    """Port validator: the Dict must load as a valid :class:`~aiida_glassml.md.protocol.MDProtocol`."""
    from aiida_glassml.md.protocol import MDProtocol, MDProtocolError

    if value is None:
        return None
    try:
        MDProtocol.from_dict(value.get_dict())
    except (MDProtocolError, TypeError) as exc:
        return f'invalid MD protocol: {exc}'
    return None


def define_md_outputs(spec) -> None:
    spec.output('thermo', valid_type=orm.ArrayData, help=f'Thermo arrays (units): {THERMO_ARRAYS}.')
    spec.output('trajectory', valid_type=orm.TrajectoryData, required=False,
                help='Decimated trajectory, wrapped positions + `images`; the full dump is in `retrieved`.')
    spec.output('structure', valid_type=orm.StructureData, help='Final structure.')
    spec.output('gamma', valid_type=orm.ArrayData, required=False,
                help='ACE extrapolation grade: arrays `step`, `max_gamma`.')
    spec.output('extrapolative_trajectory', valid_type=orm.TrajectoryData, required=False,
                help='Frames with max gamma ≥ gamma_lo (active-learning candidates).')
    spec.output('results', valid_type=orm.Dict, help='Summary; keys in aiida_glassml.md.outputs.RESULTS_KEYS.')
    spec.default_output_node = 'results'


def define_md_exit_codes(spec) -> None:
    spec.exit_code(300, 'ERROR_OUTPUT_MISSING', message='a required output file is missing: {filename}.')
    spec.exit_code(301, 'ERROR_OUTPUT_UNREADABLE', message='an output file could not be parsed: {filename}: {error}')
    spec.exit_code(305, 'ERROR_ENGINE', message='the MD engine stopped with an error: {error}')
    spec.exit_code(310, 'ERROR_UNKNOWN_STYLE',
                   message='the MD engine does not know a style; it was built without the package: {error}')
    spec.exit_code(311, 'ERROR_INVALID_COMMAND', message='the MD engine rejected an input command: {error}')
    spec.exit_code(312, 'ERROR_POTENTIAL_FILE', message='the MD engine could not read a potential file: {error}')
    spec.exit_code(350, 'ERROR_GAMMA_HALT',
                   message='stopped: ACE extrapolation grade {max_gamma} reached gamma_hi {gamma_hi} at step {step}; '
                           'the potential is extrapolating (outputs up to the halt are attached).')
    spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME',
                   message='the scheduler stopped the run at its walltime before it finished: {error}')
    spec.exit_code(410, 'ERROR_LOST_ATOMS', message='atoms were lost (left the box): {error}')
    spec.exit_code(411, 'ERROR_NEIGHBOR_LIST_OVERFLOW', message='a neighbour list overflowed: {error}')
    spec.exit_code(412, 'ERROR_OUT_OF_RANGE_ATOMS',
                   message='atoms moved too far in one step for the long-range solver: {error}')
    spec.exit_code(420, 'ERROR_NONFINITE', message='energies or temperatures became NaN/inf: {error}')


def scheduler_hit_walltime(node) -> bool:
    """Whether the scheduler output parser of ``node`` (a CalcJobNode being parsed) reported the walltime: it sets
    ``ERROR_SCHEDULER_OUT_OF_WALLTIME`` on the node before the parser runs."""
    from aiida.engine import CalcJob

    return node.exit_status == CalcJob.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status  # pylint: disable=no-member


# -- node builders (parsers of both engines) ----------------------------------------------------------------------
def thermo_array(columns: t.Mapping[str, t.Sequence[float]]) -> orm.ArrayData:
    """``thermo`` ArrayData from a dict of equal-length columns; every name in ``THERMO_ARRAYS`` is required."""
    missing = [name for name in THERMO_ARRAYS if name not in columns]
    if missing:
        raise ValueError(f'thermo columns missing: {missing}')
    lengths = {name: len(columns[name]) for name in THERMO_ARRAYS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f'thermo columns differ in length: {lengths}')
    node = orm.ArrayData()
    for name in THERMO_ARRAYS:
        dtype = np.int64 if name == 'step' else np.float64
        node.set_array(name, np.asarray(columns[name], dtype=dtype))
    node.base.attributes.set('units', dict(THERMO_ARRAYS))
    return node


def gamma_array(step: t.Sequence[int], max_gamma: t.Sequence[float]) -> orm.ArrayData:
    node = orm.ArrayData()
    node.set_array('step', np.asarray(step, dtype=np.int64))
    node.set_array('max_gamma', np.asarray(max_gamma, dtype=np.float64))
    return node


def trajectory_from_frames(
    steps: t.Sequence[int],
    cells: np.ndarray,
    symbols: t.Sequence[str],
    positions: np.ndarray,
    images: np.ndarray,
    times: t.Sequence[float] | None = None,
    arrays: t.Mapping[str, np.ndarray] | None = None,
) -> orm.TrajectoryData:
    """TrajectoryData from stacked frames: cells (n,3,3) Å, ``positions`` (n,N,3) Å wrapped into the cell, integer
    ``images`` (n,N,3) with ``unwrapped = positions + images @ cell``, times ps. Extra per-frame ``arrays`` (e.g.
    velocities, forces, max_gamma) are stored under their names. Attributes: ``wrapped=True``, ``time_unit='ps'``."""
    positions = np.asarray(positions, dtype=np.float64)
    images = np.asarray(images)
    if images.shape != positions.shape or not np.issubdtype(images.dtype, np.integer):
        raise ValueError(f'images must be integers shaped like positions {positions.shape}, got {images.dtype} '
                         f'{images.shape}.')
    node = orm.TrajectoryData()
    node.set_trajectory(
        symbols=list(symbols),
        positions=positions,
        stepids=np.asarray(steps, dtype=np.int64),
        cells=np.asarray(cells, dtype=np.float64),
        times=None if times is None else np.asarray(times, dtype=np.float64),
        pbc=(True, True, True),
    )
    node.set_array('images', images.astype(IMAGES_DTYPE))
    node.base.attributes.set('wrapped', True)
    node.base.attributes.set('time_unit', 'ps')
    for name, value in (arrays or {}).items():
        node.set_array(name, np.asarray(value))
    return node


def results_dict(values: t.Mapping[str, t.Any]) -> orm.Dict:
    """``results`` Dict; unknown keys or a stop reason outside ``STOP_REASONS`` are programming errors."""
    unknown = sorted(set(values) - set(RESULTS_KEYS))
    if unknown:
        raise ValueError(f'unknown results keys {unknown}; add them to RESULTS_KEYS with their meaning.')
    if values.get('stop_reason') not in STOP_REASONS:
        raise ValueError(f'stop_reason {values.get("stop_reason")!r} is not one of {STOP_REASONS}.')
    return orm.Dict({key: values.get(key) for key in RESULTS_KEYS})
