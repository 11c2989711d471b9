"""What aiida-vasp itself writes for the NaFePO4 preset: ``VaspCalculation.prepare_for_submission`` (no VASP run)
with the inputs ``LabelWorkChain`` gives ``VaspWorkChain``, INCAR/KPOINTS/POTCAR order pinned by regression files.
The POTCARs are dummies made from aiida-vasp's dummy Si POTCAR (no licensed VASP files here)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm

from aiida_glassml.workflows.label import LabelWorkChain, _vasp_child_inputs



def nafepo4_cell() -> orm.StructureData:
    """4 NaFePO4 formula units (28 atoms) on a jittered grid, ordered Na, Fe, P, O as in a maricite cell file."""
    from ase import Atoms

    rng = np.random.default_rng(7)
    grid = np.array([[i, j, k] for i in range(4) for j in range(4) for k in range(2)], dtype=float)[:28]
    positions = (grid + 0.5 + rng.uniform(-0.1, 0.1, grid.shape)) * [2.25, 1.75, 2.5]
    symbols = ['Na'] * 4 + ['Fe'] * 4 + ['P'] * 4 + ['O'] * 16
    return orm.StructureData(ase=Atoms(symbols, positions=positions, cell=[9.0, 7.0, 5.0], pbc=True))


def test_nafepo4_files_written_by_aiida_vasp(aiida_localhost, nafepo4_potcar_family, tmp_path, file_regression):
    from aiida.common.folders import Folder
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager
    from aiida.plugins import CalculationFactory
    from aiida_vasp.data.potcar import PotcarData

    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='vasp-dry',
                             default_calc_job_plugin='vasp.vasp').store()  # fmt: skip
    structure = nafepo4_cell()
    builder = LabelWorkChain.get_builder_from_protocol(
        code, {'nafepo4': structure}, engine='vasp', mode='aimd', protocol='balanced',
        potential_family=nafepo4_potcar_family,
    )  # fmt: skip
    _, inputs = _vasp_child_inputs(
        'aimd', code, structure, builder.settings.get_dict(), nafepo4_potcar_family, builder.settings['options']
    )
    calc_inputs = {
        'code': code, 'structure': structure, 'kpoints': inputs['kpoints'],
        'parameters': orm.Dict(inputs['parameters']['incar']),
        'potential': PotcarData.get_potcars_from_structure(
            structure, nafepo4_potcar_family, mapping=inputs['potential_mapping'].get_dict()
        ),
        'metadata': {'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}},
    }  # fmt: skip
    process = instantiate_process(get_manager().get_runner(), CalculationFactory('vasp.vasp'), **calc_inputs)
    process.prepare_for_submission(Folder(str(tmp_path)))

    incar = (tmp_path / 'INCAR').read_text()
    kpoints = (tmp_path / 'KPOINTS').read_text()
    titles = [line.split('=', 1)[1].strip() for line in (tmp_path / 'POTCAR').read_text().splitlines()
              if line.strip().startswith('TITEL')]  # fmt: skip
    species_line = (tmp_path / 'POSCAR').read_text().splitlines()[5:7]
    assert titles == [f'PAW_PBE {name} 11Jan1111' for name in ('Na_pv', 'Fe_pv', 'P', 'O')]
    assert [line.split() for line in species_line] == [['Na', 'Fe', 'P', 'O'], ['4', '4', '4', '16']]
    assert 'LDAUU = 0.0 5.1 0.0 0.0\n' in incar and 'IBRION = 0\n' in incar and 'MAGMOM = 0.6 0.6 0.6 0.6 5.0' in incar
    assert kpoints.splitlines()[2:4] == ['Gamma', '            1             1             1']
    file_regression.check(
        f'---- INCAR\n{incar}---- KPOINTS\n{kpoints}---- POTCAR TITEL\n' + '\n'.join(titles) + '\n',
        basename='vasp_nafepo4_aiida_vasp_dry_run', extension='.txt',
    )  # fmt: skip
