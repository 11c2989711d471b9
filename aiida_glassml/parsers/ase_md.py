"""Parser of :class:`~aiida_glassml.calculations.ase_md.AseMDCalculation`: the runner's files into the shared MD node
layout of :mod:`aiida_glassml.calculations.md_outputs` (the same as the LAMMPS parser's)."""

from __future__ import annotations

import io
import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.calculations import md_outputs as outputs
from aiida_glassml.md.ase_runner import FILES
from aiida_glassml.md.outputs import RESULTS_KEYS, STOP_REASON_EXIT_CODES, THERMO_COLUMNS, decimate_indices
from aiida_glassml.md.protocol import MDProtocol

__all__ = ('AseMDParser', 'read_thermo', 'read_gamma')


def read_thermo(text: str) -> dict[str, np.ndarray]:
    """Columns of ``thermo.dat``; a step written twice (after a mid-run minimisation) keeps its last line."""
    table = np.loadtxt(io.StringIO(text), ndmin=2)
    if table.size == 0:
        return {name: np.zeros(0) for name in THERMO_COLUMNS}
    steps = table[:, 0].astype(np.int64)
    last = len(steps) - 1 - np.unique(steps[::-1], return_index=True)[1]
    table = table[np.sort(last)]
    return {name: table[:, i] for i, name in enumerate(THERMO_COLUMNS)}


def read_gamma(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of a two-column log (``gamma.dat``, ``force_deviation.dat``)."""
    table = np.loadtxt(io.StringIO(text), ndmin=2)
    if table.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return table[:, 0].astype(np.int64), table[:, 1]


def _magmoms(frame):
    """Per-atom moments of a dump frame (extxyz reads a `magmoms` column into a calculator), or None."""
    if frame.calc is not None and frame.calc.results.get('magmoms') is not None:
        return np.asarray(frame.calc.results['magmoms'], dtype=float)
    return frame.arrays.get('magmoms')


def _trajectory(handle, indices=None):
    """TrajectoryData from an extxyz stream, keeping only frames at ``indices`` (None: all) in memory."""
    from ase.io import iread

    wanted = None if indices is None else set(int(i) for i in indices)
    frames = [atoms for i, atoms in enumerate(iread(handle, index=':', format='extxyz'))
              if wanted is None or i in wanted]  # fmt: skip
    if not frames:
        return None
    arrays = {}
    for name in ('max_gamma', 'max_force_deviation'):
        if name in frames[0].info:
            arrays[name] = np.array([f.info[name] for f in frames])
    if frames[0].calc is not None and 'forces' in frames[0].calc.results:  # extxyz reads `forces` into a calculator
        arrays['forces'] = np.stack([f.calc.results['forces'] for f in frames])
    if frames[0].has('momenta'):
        arrays['velocities'] = np.stack([f.get_velocities() for f in frames])
    if _magmoms(frames[0]) is not None:  # an MLIP's predicted moments (CHGNet), μB per atom
        arrays['magmoms'] = np.stack([_magmoms(f) for f in frames])
    return outputs.trajectory_from_frames(
        steps=[int(f.info['step']) for f in frames],
        cells=np.stack([np.array(f.cell) for f in frames]),
        symbols=frames[0].get_chemical_symbols(),
        positions=np.stack([f.positions for f in frames]),
        images=np.stack([f.arrays['images'] for f in frames]),
        times=[float(f.info['time']) for f in frames],
        arrays=arrays,
    )


class AseMDParser(Parser):
    def parse(self, **kwargs):
        from ase.io import read

        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        if FILES['results'] not in names:
            if outputs.scheduler_hit_walltime(self.node):
                return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(error='the runner wrote no results.json')
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=FILES['results'])
        try:
            summary = json.loads(retrieved.base.repository.get_object_content(FILES['results']))
        except json.JSONDecodeError as exc:
            return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=FILES['results'], error=exc)
        stop_reason = summary.get('stop_reason', 'error')
        if stop_reason == 'error' and FILES['final'] not in names:  # the runner failed before or while starting
            return self.exit_codes.ERROR_ENGINE.format(error=summary.get('message', 'no message'))
        for name in (FILES['thermo'], FILES['final']):
            if name not in names:
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=name)

        protocol = MDProtocol.from_dict(self.node.inputs.protocol.get_dict())
        try:
            thermo = read_thermo(retrieved.base.repository.get_object_content(FILES['thermo']))
            with retrieved.base.repository.open(FILES['final']) as handle:
                final = read(handle, format='extxyz')
        except (ValueError, IndexError) as exc:
            return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=FILES['thermo'], error=exc)
        self.out('thermo', outputs.thermo_array(thermo))
        self.out('structure', orm.StructureData(ase=final))

        n_full = int(summary.get('n_trajectory_frames_full') or 0)
        if n_full and FILES['dump'] in names:
            indices = decimate_indices(n_full, self.node.inputs.trajectory_frames.value)
            with retrieved.base.repository.open(FILES['dump']) as handle:
                trajectory = _trajectory(handle, indices)
            if trajectory is not None:
                self.out('trajectory', trajectory)

        if protocol.gamma is not None and FILES['gamma'] in names:
            steps, max_gamma = read_gamma(retrieved.base.repository.get_object_content(FILES['gamma']))
            self.out('gamma', outputs.gamma_array(steps, max_gamma))
        if protocol.force_deviation is not None and FILES['force_deviation'] in names:
            steps, sigma = read_gamma(retrieved.base.repository.get_object_content(FILES['force_deviation']))
            node = orm.ArrayData()
            node.set_array('step', steps)
            node.set_array('max_force_deviation', sigma)
            node.base.attributes.set('units', {'step': '', 'max_force_deviation': 'eV/Å'})
            self.out('force_deviation', node)
        if protocol.tracking is not None and summary.get('n_extrapolative_frames') and FILES['extrapolative'] in names:
            with retrieved.base.repository.open(FILES['extrapolative']) as handle:
                self.out('extrapolative_trajectory', _trajectory(handle))

        self.out('results', outputs.results_dict({k: v for k, v in summary.items() if k in RESULTS_KEYS}))

        if stop_reason == 'gamma_halt':
            return self.exit_codes.ERROR_GAMMA_HALT.format(
                max_gamma=f'{summary.get("max_gamma"):.3f}', gamma_hi=protocol.gamma.gamma_hi, step=summary.get('n_steps')
            )  # fmt: skip
        if stop_reason == 'force_deviation_halt':
            return self.exit_codes.ERROR_FORCE_DEVIATION_HALT.format(
                sigma=f'{summary.get("max_force_deviation"):.3f}', sigma_hi=protocol.force_deviation.sigma_hi,
                step=summary.get('n_steps'))  # fmt: skip
        if stop_reason == 'error':
            message = summary.get('message', '')
            if 'non-finite' in message:
                return self.exit_codes.ERROR_NONFINITE.format(error=message)
            return self.exit_codes.ERROR_ENGINE.format(error=message)
        if stop_reason != 'completed':
            label = STOP_REASON_EXIT_CODES[stop_reason]
            return getattr(self.exit_codes, label).format(error=summary.get('message', ''))
        return None
