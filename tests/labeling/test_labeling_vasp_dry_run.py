"""What aiida-vasp itself writes: ``VaspCalculation.prepare_for_submission`` (no VASP run) with the inputs
``LabelWorkChain`` gives ``VaspWorkChain``, INCAR/KPOINTS/POTCAR order pinned by regression files, and an interleaved
glass whose POSCAR species, POTCAR order and per-species/per-atom INCAR tags must agree. The POTCARs are dummies made
from aiida-vasp's dummy Si POTCAR (no licensed VASP files here)."""

from __future__ import annotations

import numpy as np
from aiida import orm

from aiida_glassml.workflows.label import LabelWorkChain, _vasp_child_inputs


def nafepo4_cell(symbols=None) -> orm.StructureData:
    """4 NaFePO4 formula units (28 atoms) on a jittered grid, ordered Na, Fe, P, O as in a maricite cell file."""
    from ase import Atoms

    rng = np.random.default_rng(7)
    grid = np.array([[i, j, k] for i in range(4) for j in range(4) for k in range(2)], dtype=float)[:28]
    positions = (grid + 0.5 + rng.uniform(-0.1, 0.1, grid.shape)) * [2.25, 1.75, 2.5]
    symbols = symbols or ['Na'] * 4 + ['Fe'] * 4 + ['P'] * 4 + ['O'] * 16
    return orm.StructureData(ase=Atoms(symbols, positions=positions, cell=[9.0, 7.0, 5.0], pbc=True))


def interleaved_glass() -> orm.StructureData:
    """The same cell with its species shuffled, as in an MD frame or a published glass file (O first, Fe last)."""
    symbols = ['Na'] * 4 + ['Fe'] * 4 + ['P'] * 4 + ['O'] * 16
    shuffled = [symbols[i] for i in np.random.default_rng(11).permutation(28)]
    return nafepo4_cell(shuffled)


def write_vasp_inputs(code, structure, family, folder, overrides=None) -> dict:
    """INCAR, KPOINTS, POSCAR and POTCAR as aiida-vasp writes them for ``structure`` with LabelWorkChain's inputs."""
    from aiida.common.folders import Folder
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager
    from aiida.plugins import CalculationFactory
    from aiida_vasp.data.potcar import PotcarData

    builder = LabelWorkChain.get_builder_from_protocol(
        code, {'glass': structure}, engine='vasp', mode='aimd', protocol='balanced', potential_family=family,
        overrides=overrides,
    )  # fmt: skip
    settings = builder.settings.get_dict()
    _, inputs = _vasp_child_inputs('aimd', code, structure, settings, family, settings['options'])
    calc_inputs = {
        'code': code, 'structure': inputs['structure'], 'kpoints': inputs['kpoints'],
        'parameters': orm.Dict(inputs['parameters']['incar']),
        'potential': PotcarData.get_potcars_from_structure(
            inputs['structure'], family, mapping=inputs['potential_mapping'].get_dict()
        ),
        'metadata': {'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}},
    }  # fmt: skip
    process = instantiate_process(get_manager().get_runner(), CalculationFactory('vasp.vasp'), **calc_inputs)
    process.prepare_for_submission(Folder(str(folder)))
    poscar = (folder / 'POSCAR').read_text().splitlines()
    return {
        'inputs': inputs, 'incar': (folder / 'INCAR').read_text(), 'kpoints': (folder / 'KPOINTS').read_text(),
        'titles': [line.split('=', 1)[1].strip() for line in (folder / 'POTCAR').read_text().splitlines()
                   if line.strip().startswith('TITEL')],
        'species': poscar[5].split(), 'counts': [int(n) for n in poscar[6].split()],
        'positions': np.array([[float(x) for x in line.split()[:3]] for line in poscar[8:]]),
    }  # fmt: skip


def incar_tag(incar: str, tag: str) -> list[str]:
    """The values of ``tag`` in INCAR text, repeats (``4*0.6``) expanded."""
    (line,) = [line for line in incar.splitlines() if line.split('=')[0].strip() == tag]
    values = []
    for item in line.split('=', 1)[1].split():
        count, _, value = item.rpartition('*')
        values += [value] * (int(count) if count else 1)
    return values


def vasp_dry_code(aiida_localhost):
    return orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='vasp-dry',
                             default_calc_job_plugin='vasp.vasp').store()  # fmt: skip


def test_nafepo4_files_written_by_aiida_vasp(aiida_localhost, nafepo4_potcar_family, tmp_path, file_regression):
    structure = nafepo4_cell()
    written = write_vasp_inputs(vasp_dry_code(aiida_localhost), structure, nafepo4_potcar_family, tmp_path)
    incar, kpoints, titles = written['incar'], written['kpoints'], written['titles']
    assert written['inputs']['structure'] is structure  # already grouped: VASP runs on it as given
    assert titles == [f'PAW_PBE {name} 11Jan1111' for name in ('Na_pv', 'Fe', 'P', 'O')]  # the study's Fe POTCAR
    assert written['species'] == ['Na', 'Fe', 'P', 'O'] and written['counts'] == [4, 4, 4, 16]
    assert 'LDAUU = 0.0 5.3 0.0 0.0\n' in incar and 'IBRION = 0\n' in incar and 'ISPIN = 1\n' in incar
    assert 'MAGMOM' not in incar and 'PREC = Normal\n' in incar and 'LASPH = .TRUE.\n' in incar
    assert kpoints.splitlines()[2:4] == ['Gamma', '            1             1             1']
    file_regression.check(
        f'---- INCAR\n{incar}---- KPOINTS\n{kpoints}---- POTCAR TITEL\n' + '\n'.join(titles) + '\n',
        basename='vasp_nafepo4_aiida_vasp_dry_run', extension='.txt',
    )  # fmt: skip


def test_interleaved_glass_species_agree(aiida_localhost, nafepo4_potcar_family, tmp_path):
    """An interleaved glass runs grouped by species: POSCAR's species line, the POTCAR order, LDAUL/LDAUU/LDAUJ (one
    per POSCAR species) and MAGMOM (one per POSCAR atom) agree, and the grouping is recorded for mapping back."""
    structure = interleaved_glass()
    original = [site.kind_name for site in structure.sites]
    runs = sum(1 for i in range(1, 28) if original[i] != original[i - 1]) + 1
    assert runs > 4  # interleaved: aiida-vasp would write `runs` species for it as given
    written = write_vasp_inputs(vasp_dry_code(aiida_localhost), structure, nafepo4_potcar_family, tmp_path,
                                overrides={'vasp': {'preset': 'nafepo4_spin'}})  # fmt: skip
    incar, inputs = written['incar'], written['inputs']
    species = list(dict.fromkeys(original))  # first appearance
    assert written['species'] == species and written['counts'] == [original.count(s) for s in species]
    potcar = {'Na': 'Na_pv', 'Fe': 'Fe', 'P': 'P', 'O': 'O'}
    assert written['titles'] == [f'PAW_PBE {potcar[s]} 11Jan1111' for s in species]
    assert incar_tag(incar, 'LDAUU') == ['5.3' if s == 'Fe' else '0.0' for s in species]
    assert incar_tag(incar, 'LDAUL') == ['2' if s == 'Fe' else '-1' for s in species]
    assert len(incar_tag(incar, 'LDAUJ')) == len(species)
    poscar_atoms = [s for s, n in zip(written['species'], written['counts']) for _ in range(n)]
    assert incar_tag(incar, 'MAGMOM') == ['5.0' if s == 'Fe' else '0.6' for s in poscar_atoms]
    # the grouping: recorded for the parser, in the provenance (calcfunction), positions carried with the atoms
    order = inputs['settings']['glassml_atom_order']
    assert [original[i] for i in order] == poscar_atoms
    grouped = inputs['structure']
    assert grouped.creator.process_label == 'group_kinds' and grouped.creator.inputs.structure.uuid == structure.uuid
    cell = np.array(structure.cell)
    fractional = np.array([site.position for site in structure.sites])[order] @ np.linalg.inv(cell)
    np.testing.assert_allclose(written['positions'], fractional % 1.0, atol=1e-8)
