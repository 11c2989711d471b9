"""The node layout shared by every MD CalcJob (LAMMPS and ASE), so the work chains above do not care which engine ran.

Use in a CalcJob's ``define``::

    define_md_inputs(spec)        # structure, protocol (Dict of MDProtocol.to_dict()), trajectory_frames
    define_md_outputs(spec)
    define_md_exit_codes(spec)

and in its parser build the nodes with :func:`thermo_array`, :func:`gamma_array`, :func:`trajectory_from_frames`
and :func:`results_dict` (which checks the keys). Outputs:

``thermo`` (ArrayData)
    1-D arrays, one entry per thermo line, names and units in :data:`THERMO_ARRAYS`.
``trajectory`` (TrajectoryData)
    decimated to at most ``trajectory_frames`` frames (evenly spaced, last frame kept); the full dump stays as a
    file in ``retrieved`` (name in ``results['full_trajectory_file']``) and is never loaded whole into memory.
``structure`` (StructureData)
    the final structure.
``gamma`` (ArrayData, only with gamma tracking)
    arrays ``step`` and ``max_gamma`` (max per-atom extrapolation grade every ``GammaTracking.interval`` steps).
``extrapolative_trajectory`` (TrajectoryData, only with gamma tracking and when a frame reached ``gamma_lo``)
    the frames with max gamma ≥ ``gamma_lo``: candidates for active-learning selection; array ``max_gamma``.
``results`` (Dict)
    keys in :data:`RESULTS_KEYS`; ``stop_reason`` is one of :data:`STOP_REASONS`.

Exit codes (:func:`define_md_exit_codes`): 3xx cannot be fixed by rerunning, 4xx can be retried with changed
settings (see ``LammpsMDBaseWorkChain``). A gamma halt is 350: rerunning the same potential would halt again, the fix
is to retrain it (the active-learning loop treats 350 as an expected outcome and uses its outputs, which are
attached as for a completed run).
"""

from __future__ import annotations

import typing as t

import numpy as np

#: why a run stopped
STOP_REASONS = ('completed', 'gamma_halt', 'lost_atoms', 'neighbor_overflow', 'error')

#: ``thermo`` ArrayData array names → units. ``time`` counts from the start of the first MD stage.
THERMO_ARRAYS: dict[str, str] = {
    'step': '',
    'time': 'ps',
    'temperature': 'K',
    'pressure': 'bar',
    'volume': 'Å³',
    'potential_energy': 'eV',
    'total_energy': 'eV',
    'density': 'g/cm³',
}

#: ``results`` keys → meaning. Keys marked optional may be None.
RESULTS_KEYS: dict[str, str] = {
    'engine': "'lammps' or 'ase'",
    'engine_version': 'version string of the MD engine',
    'stop_reason': f'one of {STOP_REASONS}',
    'message': 'error or halt message from the engine, empty when completed',
    'n_steps': 'last MD step reached (global count from the first MD stage)',
    'n_steps_requested': 'MD steps the protocol asked for',
    'n_atoms': 'number of atoms at the end',
    'n_stages_completed': 'stages finished before the run stopped',
    'max_gamma': 'largest max per-atom gamma seen (optional: None without gamma tracking)',
    'n_extrapolative_frames': 'frames with max gamma ≥ gamma_lo (optional)',
    'wall_time_s': 'engine wall time in seconds (optional)',
    'final_temperature': 'K, last thermo line',
    'final_pressure': 'bar, last thermo line',
    'final_volume': 'Å³, final structure',
    'final_density': 'g/cm³, final structure',
    'final_potential_energy': 'eV, last thermo line',
    'full_trajectory_file': 'name of the full dump in `retrieved` (optional: None when dump_interval is 0)',
    'n_trajectory_frames_full': 'frames in the full dump',
}

#: stop_reason → exit-code label (``completed`` → 0)
STOP_REASON_EXIT_CODES = {
    'completed': None,
    'gamma_halt': 'ERROR_GAMMA_HALT',
    'lost_atoms': 'ERROR_LOST_ATOMS',
    'neighbor_overflow': 'ERROR_NEIGHBOR_LIST_OVERFLOW',
    'error': 'ERROR_ENGINE',
}

DEFAULT_TRAJECTORY_FRAMES = 200


def define_md_inputs(spec) -> None:
    """Inputs every MD CalcJob shares: ``structure``, ``protocol`` (Dict) and ``trajectory_frames`` (Int)."""
    from aiida import orm

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
    """Port validator: the Dict must load as a valid :class:`MDProtocol`."""
    from aiida_glassml.md.protocol import MDProtocol, MDProtocolError

    if value is None:
        return None
    try:
        MDProtocol.from_dict(value.get_dict())
    except (MDProtocolError, TypeError) as exc:
        return f'invalid MD protocol: {exc}'
    return None


def define_md_outputs(spec) -> None:
    from aiida import orm

    spec.output('thermo', valid_type=orm.ArrayData, help=f'Thermo arrays (units): {THERMO_ARRAYS}.')
    spec.output('trajectory', valid_type=orm.TrajectoryData, required=False,
                help='Decimated trajectory; the full dump is in `retrieved`.')
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
    spec.exit_code(400, 'ERROR_OUT_OF_WALLTIME', message='the run hit the scheduler walltime before finishing.')
    spec.exit_code(410, 'ERROR_LOST_ATOMS', message='atoms were lost (left the box): {error}')
    spec.exit_code(411, 'ERROR_NEIGHBOR_LIST_OVERFLOW', message='a neighbour list overflowed: {error}')
    spec.exit_code(412, 'ERROR_OUT_OF_RANGE_ATOMS',
                   message='atoms moved too far in one step for the long-range solver: {error}')
    spec.exit_code(420, 'ERROR_NONFINITE', message='energies or temperatures became NaN/inf: {error}')


# -- node builders (parsers of both engines) ----------------------------------------------------------------------
def thermo_array(columns: t.Mapping[str, t.Sequence[float]]):
    """``thermo`` ArrayData from a dict of equal-length columns; every name in :data:`THERMO_ARRAYS` is required."""
    from aiida import orm

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


def gamma_array(step: t.Sequence[int], max_gamma: t.Sequence[float]):
    from aiida import orm

    node = orm.ArrayData()
    node.set_array('step', np.asarray(step, dtype=np.int64))
    node.set_array('max_gamma', np.asarray(max_gamma, dtype=np.float64))
    return node


def decimate_indices(n_frames: int, max_frames: int) -> np.ndarray:
    """Indices of at most ``max_frames`` evenly spaced frames out of ``n_frames``, always keeping the last one."""
    if n_frames <= 0 or max_frames <= 0:
        return np.zeros(0, dtype=int)
    if n_frames <= max_frames:
        return np.arange(n_frames)
    indices = np.unique(np.round(np.linspace(0, n_frames - 1, max_frames)).astype(int))
    return indices


def trajectory_from_frames(
    steps: t.Sequence[int],
    cells: np.ndarray,
    symbols: t.Sequence[str],
    positions: np.ndarray,
    times: t.Sequence[float] | None = None,
    arrays: t.Mapping[str, np.ndarray] | None = None,
):
    """TrajectoryData from stacked frames (cells (n,3,3) Å, positions (n,N,3) Å, times ps); extra per-frame
    ``arrays`` (e.g. velocities, forces, max_gamma) are stored under their names."""
    from aiida import orm

    node = orm.TrajectoryData()
    node.set_trajectory(
        symbols=list(symbols),
        positions=np.asarray(positions, dtype=np.float64),
        stepids=np.asarray(steps, dtype=np.int64),
        cells=np.asarray(cells, dtype=np.float64),
        times=None if times is None else np.asarray(times, dtype=np.float64),
    )
    for name, value in (arrays or {}).items():
        node.set_array(name, np.asarray(value))
    return node


def results_dict(values: t.Mapping[str, t.Any]):
    """``results`` Dict; unknown keys or a stop reason outside :data:`STOP_REASONS` are programming errors."""
    from aiida import orm

    unknown = sorted(set(values) - set(RESULTS_KEYS))
    if unknown:
        raise ValueError(f'unknown results keys {unknown}; add them to RESULTS_KEYS with their meaning.')
    if values.get('stop_reason') not in STOP_REASONS:
        raise ValueError(f'stop_reason {values.get("stop_reason")!r} is not one of {STOP_REASONS}.')
    return orm.Dict({key: values.get(key) for key in RESULTS_KEYS})
