"""Parser for ``LammpsMDCalculation``: LAMMPS files → the shared MD node layout
(:mod:`aiida_glassml.calculations.md_outputs`).

The full trajectory dump stays in ``retrieved``; it is streamed twice (count, then the selected frames) so memory
holds at most ``trajectory_frames`` frames. With the setting ``retrieve_trajectory: false`` the dump stays in the
remote folder: no ``trajectory`` node, ``full_trajectory_file`` still names it and its frame count is unknown (None).
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.calculations import md_outputs as outputs
from aiida_glassml.common import units
from aiida_glassml.md import lammps as render
from aiida_glassml.md import lammps_parsing as lp
from aiida_glassml.md.outputs import decimate_indices
from aiida_glassml.md.protocol import MDProtocol


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


class LammpsMDParser(Parser):
    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = set(retrieved.base.repository.list_object_names())
        protocol = MDProtocol.from_dict(self.node.inputs.protocol.get_dict(), validate=False)

        log_name = render.FILENAME_LOG if render.FILENAME_LOG in names else render.FILENAME_STDOUT
        if log_name not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=render.FILENAME_STDOUT)
        summary = lp.parse_log(retrieved.base.repository.get_object_content(log_name))
        if summary.stop_reason == 'error' and not summary.message.startswith('ERROR') and \
                log_name != render.FILENAME_STDOUT and render.FILENAME_STDOUT in names:
            # some errors (MPI aborts, a crash before the log opened) only reach stdout
            summary = lp.parse_log(retrieved.base.repository.get_object_content(render.FILENAME_STDOUT))
        if outputs.scheduler_hit_walltime(self.node) and summary.stop_reason != 'completed':
            summary = lp.walltime_summary(summary)

        thermo_columns = None
        if render.FILENAME_THERMO in names:
            try:
                thermo_columns = lp.parse_thermo(retrieved.base.repository.get_object_content(render.FILENAME_THERMO))
            except ValueError as exc:
                return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=render.FILENAME_THERMO, error=exc)
            self.out('thermo', outputs.thermo_array(thermo_columns))

        symbols_by_type = [kind.symbol for kind in self.node.inputs.structure.kinds]
        kinds_by_type = [kind.name for kind in self.node.inputs.structure.kinds]
        final = None
        if render.FILENAME_FINAL in names:
            with retrieved.base.repository.open(render.FILENAME_FINAL) as handle:
                final = next(lp.iter_dump_frames(handle), None)
        if final is not None:
            self.out('structure', self._structure(final, kinds_by_type, symbols_by_type))

        n_full = 0
        settings = self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {}
        left_remote = not settings.get('retrieve_trajectory', True) and protocol.dump_interval > 0
        if render.FILENAME_TRAJECTORY in names:
            with retrieved.base.repository.open(render.FILENAME_TRAJECTORY) as handle:
                n_full = lp.count_dump_frames(handle)
            keep = set(decimate_indices(n_full, self.node.inputs.trajectory_frames.value).tolist())
            with retrieved.base.repository.open(render.FILENAME_TRAJECTORY) as handle:
                frames = list(lp.iter_dump_frames(handle, select=keep))
            if frames:
                self.out('trajectory', self._trajectory(frames, symbols_by_type, protocol.timestep))

        max_gamma = None
        n_extrapolative = None
        if protocol.gamma is not None and render.FILENAME_GAMMA in names:
            steps, gamma = lp.parse_gamma(retrieved.base.repository.get_object_content(render.FILENAME_GAMMA))
            self.out('gamma', outputs.gamma_array(steps, gamma))
            max_gamma = float(gamma.max()) if gamma.size else None
            if render.FILENAME_EXTRAPOLATIVE in names:
                with retrieved.base.repository.open(render.FILENAME_EXTRAPOLATIVE) as handle:
                    frames = list(lp.iter_dump_frames(handle))
                n_extrapolative = len(frames)
                if frames:
                    node = self._trajectory(frames, symbols_by_type, protocol.timestep)
                    # the ASE layout: max_gamma per frame; per-atom gamma stays in the retrieved dump
                    if all('f_pace_gamma' in f.columns for f in frames):
                        node.set_array('max_gamma', np.array([f.columns['f_pace_gamma'].max() for f in frames]))
                    self.out('extrapolative_trajectory', node)
        if summary.gamma_halt_value is not None:
            max_gamma = max(max_gamma or 0.0, summary.gamma_halt_value)

        last = {name: (float(values[-1]) if len(values) else None) for name, values in (thermo_columns or {}).items()}
        final_volume = final_density = None
        if final is not None:
            final_volume = float(abs(np.linalg.det(final.cell)))
            masses = [kind.mass for kind in self.node.inputs.structure.kinds]
            total_mass = float(sum(masses[t - 1] for t in final.types))
            final_density = float(units.density_g_cm3(total_mass, final_volume))
        results = {
            'engine': 'lammps',
            'engine_version': summary.version,
            'versions': {'lammps': summary.version or None, 'aiida-glassml': _version('aiida-glassml')},
            'stop_reason': summary.stop_reason,
            'message': summary.message,
            'n_steps': summary.last_step if summary.last_step is not None else (
                int(thermo_columns['step'][-1]) if thermo_columns is not None and len(thermo_columns['step']) else 0),
            'n_steps_requested': protocol.total_steps,
            'n_atoms': int(len(final.ids)) if final is not None else len(self.node.inputs.structure.sites),
            'n_stages_completed': summary.n_stages_completed,
            'max_gamma': max_gamma,
            'n_extrapolative_frames': n_extrapolative,
            'wall_time_s': summary.wall_time_s,
            'final_temperature': last.get('temperature'),
            'final_pressure': last.get('pressure'),
            'final_volume': final_volume,
            'final_density': final_density,
            'final_potential_energy': last.get('potential_energy'),
            'full_trajectory_file': render.FILENAME_TRAJECTORY if n_full or left_remote else None,
            'n_trajectory_frames_full': None if left_remote else n_full,
        }
        self.out('results', outputs.results_dict(results))

        if summary.exit_code == 'ERROR_GAMMA_HALT':
            gamma = protocol.gamma
            return self.exit_codes.ERROR_GAMMA_HALT.format(
                max_gamma=f'{summary.gamma_halt_value:g}', gamma_hi=gamma.gamma_hi if gamma else '?',
                step=summary.gamma_halt_step)
        if summary.exit_code is not None:
            return getattr(self.exit_codes, summary.exit_code).format(error=summary.message)
        if thermo_columns is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=render.FILENAME_THERMO)
        if final is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=render.FILENAME_FINAL)
        return None

    @staticmethod
    def _structure(frame: lp.DumpFrame, kinds_by_type, symbols_by_type) -> orm.StructureData:
        structure = orm.StructureData(cell=frame.cell.tolist())
        for name, symbol in zip(kinds_by_type, symbols_by_type):
            if name not in structure.get_kind_names():
                structure.append_kind(orm.Kind(name=name, symbols=symbol))
        for type_id, position in zip(frame.types, frame.positions):
            structure.append_site(orm.Site(kind_name=kinds_by_type[type_id - 1], position=position.tolist()))
        return structure

    @staticmethod
    def _trajectory(frames, symbols_by_type, timestep_ps: float) -> orm.TrajectoryData:
        steps = [f.step for f in frames]
        symbols = [symbols_by_type[t - 1] for t in frames[0].types]
        arrays = {}
        for name, fields in (('velocities', ('vx', 'vy', 'vz')), ('forces', ('fx', 'fy', 'fz'))):
            if all(all(c in f.columns for c in fields) for f in frames):
                arrays[name] = np.stack([np.stack([f.columns[c] for c in fields], axis=1) for f in frames])
        if any(f.images is None for f in frames):
            raise ValueError('the dump has no image flags (ix iy iz); it was not written by aiida_glassml.md.lammps.')
        return outputs.trajectory_from_frames(
            steps=steps, cells=np.stack([f.cell for f in frames]), symbols=symbols,
            positions=np.stack([f.positions for f in frames]), images=np.stack([f.images for f in frames]),
            times=[units.time_from_steps(s, timestep_ps) for s in steps], arrays=arrays,
        )  # fmt: skip
