"""Parsers of the strain–stress CalcJobs: the stress–strain table (stress in GPa, tension positive), the minimised
reference structure and a summary."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_glassml.analysis import elastic
from aiida_glassml.calculations import md_outputs

__all__ = ('ElasticAseParser', 'LammpsElasticParser', 'stress_strain_array')


def stress_strain_array(table: dict) -> orm.ArrayData:
    node = orm.ArrayData()
    for name, values in table.items():
        node.set_array(name, np.asarray(values))
    node.base.attributes.set('components', list(elastic.COMPONENTS))
    node.base.attributes.set('units', {'strain': 'dimensionless (shear: engineering γ)', 'stress': 'GPa',
                                       'energy': 'eV', 'fmax': 'eV/Å'})  # fmt: skip
    return node


class _ElasticParser(Parser):
    engine: str

    def _table(self, names: set[str]):
        """The table as arrays, or an exit code."""
        name = elastic.FILES['table']
        if name not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=name)
        try:
            return elastic.read_table(self.retrieved.base.repository.get_object_content(name), self.engine)
        except (ValueError, IndexError) as exc:
            return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=name, error=exc)

    def _finish(self, table: dict, structure: orm.StructureData, summary: dict):
        protocol = elastic.StrainProtocol.from_dict(self.node.inputs.strain.get_dict(), validate=False)
        expected = len(protocol.points()) + 1
        self.out('stress_strain', stress_strain_array(table))
        self.out('structure', structure)
        self.out('results', orm.Dict({**summary, 'n_points': len(table['strain']), 'n_points_expected': expected,
                                      'n_unconverged': int((table['fmax'] > protocol.ftol * 1.0001).sum()),
                                      'max_fmax': float(table['fmax'].max())}))  # fmt: skip
        if len(table['strain']) < expected:
            return self.exit_codes.ERROR_INCOMPLETE.format(done=len(table['strain']), expected=expected)
        return None


class ElasticAseParser(_ElasticParser):
    engine = 'ase'

    def parse(self, **kwargs):
        from ase.io import read

        names = set(self.retrieved.base.repository.list_object_names())
        results_name = elastic.FILES['results']
        if results_name not in names:
            if md_outputs.scheduler_hit_walltime(self.node):
                return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(error='the runner wrote no results.json')
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=results_name)
        try:
            summary = json.loads(self.retrieved.base.repository.get_object_content(results_name))
        except json.JSONDecodeError as exc:
            return self.exit_codes.ERROR_OUTPUT_UNREADABLE.format(filename=results_name, error=exc)
        if not summary.get('completed'):
            return self.exit_codes.ERROR_ENGINE.format(error=summary.get('message', 'no message'))
        table = self._table(names)
        if not isinstance(table, dict):
            return table
        with self.retrieved.base.repository.open(elastic.FILES['reference']) as handle:
            reference = read(handle, format='extxyz')
        structure = self.node.inputs.structure.clone()
        structure.reset_sites_positions(reference.positions)
        summary.pop('completed', None)
        return self._finish(table, structure, summary)


class LammpsElasticParser(_ElasticParser):
    engine = 'lammps'

    def parse(self, **kwargs):
        from aiida_glassml.md import lammps_parsing as lp

        names = set(self.retrieved.base.repository.list_object_names())
        text = ''
        for name in (elastic.FILES['lammps_log'], elastic.FILES['lammps_stdout']):
            if name in names:
                text = self.retrieved.base.repository.get_object_content(name)
                if elastic.MARK_END in text or 'ERROR' in text:
                    break
        if not text:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=elastic.FILES['lammps_stdout'])
        errors = [line.strip() for line in text.splitlines() if line.lstrip().startswith('ERROR')]
        finished = any(line.strip() == elastic.MARK_END for line in text.splitlines())
        if errors or not finished:
            if md_outputs.scheduler_hit_walltime(self.node):
                return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(error='LAMMPS did not reach the end')
            if errors:
                return self.exit_codes.ERROR_ENGINE.format(error=errors[0])
        table = self._table(names)
        if not isinstance(table, dict):
            return table
        name = elastic.FILES['lammps_reference']
        if name not in names:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=name)
        with self.retrieved.base.repository.open(name) as handle:
            frame = next(lp.iter_dump_frames(handle))
        structure = _structure_like(self.node.inputs.structure, frame.cell, frame.positions[np.argsort(frame.ids)])
        summary = lp.parse_log(text)
        return self._finish(table, structure, {'engine': 'lammps', 'engine_version': summary.version,
                                               'wall_time_s': summary.wall_time_s, 'n_atoms': len(frame.ids)})


def _structure_like(template: orm.StructureData, cell, positions) -> orm.StructureData:
    """``template``'s kinds and site order with a new cell and positions (LAMMPS's frame)."""
    structure = orm.StructureData(cell=np.asarray(cell).tolist())
    for kind in template.kinds:
        structure.append_kind(kind)
    for site, position in zip(template.sites, positions):
        structure.append_site(orm.Site(kind_name=site.kind_name, position=tuple(float(x) for x in position)))
    return structure
