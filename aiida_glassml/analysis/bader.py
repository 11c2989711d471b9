"""Bader charges from a charge density on a grid: CP2K's electron-density cube or VASP's CHGCAR. Pure numpy + ASE.

The grid is split into Bader volumes by the on-grid steepest-ascent method of Henkelman, Arnaldsson and Jónsson
(Comput. Mater. Sci. 36, 354 (2006)): every grid point steps to the one of its 26 neighbours with the largest
ascent Δρ/|Δr| until it reaches a maximum; each maximum (attractor) belongs to its nearest atom. Every grid point is
assigned, so the populations add up to the integral of the density. The on-grid method carries a small lattice bias
(about 0.1 e at the usual DFT grids); the populations are those of the density given: a pseudo (valence) density for
CP2K's GTH and VASP's PAW, so a population is compared with the valence charge ``Z_val`` of the pseudopotential
(CP2K: the ``q`` of ``GTH-PBE-q9``; VASP: ``ZVAL`` of the POTCAR) and ``charge = Z_val - population``.

pybader 0.3.12 (2020) imports ``pkg_resources``, which setuptools >= 81 no longer ships, and baderkit pins older
numba and pymatgen than CHGNet here, so the method is implemented here from the paper.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import pathlib
import sys
import typing as t

import numpy as np
from ase import Atoms
from ase.units import Bohr

from .errors import AnalysisInputError
from .neighbors import minimum_image

#: readers by format; :func:`density_format` picks one from a file name
FORMATS = ('cube', 'chgcar')
#: files of the Bader job (:func:`main`)
FILES = {'input': 'bader_input.json', 'script': 'run_bader.py', 'results': 'bader.json', 'arrays': 'bader.npz',
         'stdout': 'bader.out'}  # fmt: skip


@dataclasses.dataclass
class ChargeDensity:
    """Electrons per Å³ on a periodic grid (n1, n2, n3) spanning ``atoms.cell``; ``atoms`` as the file gives them."""

    atoms: Atoms
    density: np.ndarray
    source: str

    @property
    def voxel_volume(self) -> float:
        """Å³ per grid point."""
        return float(abs(np.linalg.det(self.atoms.cell.array))) / self.density.size

    @property
    def n_electrons(self) -> float:
        """The integral of the density over the cell."""
        return float(self.density.sum() * self.voxel_volume)


@dataclasses.dataclass
class BaderResult:
    """Per atom: ``populations`` (electrons), ``volumes`` (Å³); ``n_maxima`` attractors, the largest distance
    ``max_attractor_distance`` (Å) of one from its atom, and ``n_electrons`` (the integral of the density)."""

    populations: np.ndarray
    volumes: np.ndarray
    n_maxima: int
    max_attractor_distance: float
    n_electrons: float


def density_format(filename: str) -> str:
    """``cube`` for ``*.cube``/``*.cub``, ``chgcar`` for VASP's ``CHGCAR``/``CHG``/``AECCAR*`` (also with a suffix)."""
    name = pathlib.Path(filename).name.removesuffix('.gz')
    if name.lower().endswith(('.cube', '.cub')):
        return 'cube'
    if name.upper().startswith(('CHGCAR', 'CHG', 'AECCAR', 'PARCHG')):
        return 'chgcar'
    raise AnalysisInputError(
        f'cannot tell the format of the density file {name!r}; give a Gaussian cube (*.cube, CP2K E_DENSITY_CUBE) '
        'or a VASP CHGCAR (a name starting with CHGCAR).'
    )


def _open_text(path: pathlib.Path):
    return gzip.open(path, 'rt', encoding='utf-8') if path.name.endswith('.gz') else open(path, encoding='utf-8')


def _read(path: str | pathlib.Path, fmt: str | None, with_data: bool) -> tuple[Atoms, np.ndarray | None, str]:
    path = pathlib.Path(path)
    if not path.is_file():
        raise AnalysisInputError(f'density file {path} does not exist; give the cube or CHGCAR the DFT run wrote.')
    fmt = fmt or density_format(path.name)
    if fmt not in FORMATS:
        raise AnalysisInputError(f'unknown density format {fmt!r}; use one of {list(FORMATS)}.')
    density = None
    try:
        with _open_text(path) as handle:
            if fmt == 'cube':
                from ase.io.cube import read_cube

                content = read_cube(handle, read_data=with_data)
                atoms = content['atoms']
                atoms.pbc = True
                if with_data:
                    density = np.asarray(content['data'], dtype=float) / Bohr**3
            elif with_data:
                from ase.calculators.vasp import VaspChargeDensity

                chgcar = VaspChargeDensity(None)
                if path.name.endswith('.gz'):
                    _read_chgcar_gz(chgcar, path)
                else:
                    chgcar.read(str(path))
                density, atoms = np.asarray(chgcar.chg[-1], dtype=float), chgcar.atoms[-1]
            else:
                from ase.io.vasp import read_vasp_configuration

                atoms = read_vasp_configuration(handle)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file fails in many ways in ASE's readers
        raise AnalysisInputError(
            f'{path.name} is not a readable {fmt} file ({type(exc).__name__}: {exc}); write it again with the DFT code.'
        ) from exc
    return atoms, density, fmt


def _read_chgcar_gz(chgcar, path: pathlib.Path) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile('w', suffix='CHGCAR') as plain, gzip.open(path, 'rt') as packed:
        plain.write(packed.read())
        plain.flush()
        chgcar.read(plain.name)


def read_density_atoms(path: str | pathlib.Path, fmt: str | None = None) -> Atoms:
    """Only the atoms of a density file (its header): cheap enough to check a file against a structure before a
    job is submitted."""
    return _read(path, fmt, with_data=False)[0]


def read_density_atoms_from_stream(stream: t.BinaryIO, filename: str) -> Atoms:
    """The atoms in the header of a density file open for binary reading (e.g. from a node's repository); only the
    header is read, however large the grid."""
    import io

    fmt = density_format(filename)
    raw = gzip.GzipFile(fileobj=stream) if filename.endswith('.gz') else stream
    handle = io.TextIOWrapper(raw, encoding='utf-8', errors='replace')
    try:
        if fmt == 'cube':
            from ase.io.cube import read_cube

            atoms = read_cube(handle, read_data=False)['atoms']
            atoms.pbc = True
            return atoms
        from ase.io.vasp import read_vasp_configuration

        return read_vasp_configuration(handle)
    except Exception as exc:  # noqa: BLE001 - as in _read
        raise AnalysisInputError(
            f'{filename} is not a readable {fmt} file ({type(exc).__name__}: {exc}); write it again with the DFT code.'
        ) from exc


def read_density(path: str | pathlib.Path, fmt: str | None = None) -> ChargeDensity:
    """Read a charge density file (also gzipped): a cube (e/bohr³, CP2K) or a CHGCAR (ρ·V, VASP); either way e/Å³
    on return."""
    atoms, density, fmt = _read(path, fmt, with_data=True)
    if density.ndim != 3 or min(density.shape) < 2:
        raise AnalysisInputError(f'the density grid has shape {density.shape}; a 3D grid is needed.')
    return ChargeDensity(atoms=atoms, density=density, source=fmt)


def check_density_matches(atoms: Atoms, symbols: t.Sequence[str], positions, cell, tolerance: float = 0.05):
    """Raise :class:`AnalysisInputError` unless the density file's ``atoms`` are ``symbols`` at ``positions`` (Å) in
    ``cell``, within ``tolerance`` Å (periodic images count as equal): the density belongs to that structure."""
    if len(atoms) != len(symbols) or list(atoms.get_chemical_symbols()) != list(symbols):
        raise AnalysisInputError(
            f'the density file holds {len(atoms)} atoms ({atoms.get_chemical_formula()}) but the structure has '
            f'{len(symbols)} ({Atoms(symbols).get_chemical_formula()}) or another order; give the density of this '
            'structure.'
        )
    cell = np.asarray(cell, dtype=float)
    if np.abs(atoms.cell.array - cell).max() > tolerance:
        raise AnalysisInputError(
            'the density grid spans another cell than the structure (largest difference '
            f'{np.abs(atoms.cell.array - cell).max():.3f} Å); give the density of this structure (a cube written '
            'with a STRIDE that does not divide the grid also spans a wrong cell: use STRIDE 1).'
        )
    shifts = minimum_image(np.asarray(positions, dtype=float) - atoms.positions, cell)
    worst = float(np.linalg.norm(shifts, axis=1).max())
    if worst > tolerance:
        raise AnalysisInputError(
            f'the atoms of the density file lie up to {worst:.3f} Å from those of the structure; give the density of '
            'this structure.'
        )


def _ascent_targets(rho: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Flat index of the neighbour each grid point ascends to (itself at a maximum)."""
    shape = rho.shape
    steps = cell / np.asarray(shape)[:, None]  # rows: the grid vectors, Å
    best = np.zeros(shape)
    target = np.arange(rho.size).reshape(shape)
    index = np.arange(rho.size).reshape(shape)
    for offset in np.ndindex(3, 3, 3):
        shift = np.asarray(offset) - 1
        if not shift.any():
            continue
        length = np.linalg.norm(shift @ steps)
        # the neighbour at +shift of point p is what np.roll(-shift) brings to p
        ascent = (np.roll(rho, tuple(-shift), axis=(0, 1, 2)) - rho) / length
        better = ascent > best
        best[better] = ascent[better]
        target[better] = np.roll(index, tuple(-shift), axis=(0, 1, 2))[better]
    return target.ravel()


def _follow_to_maxima(target: np.ndarray) -> np.ndarray:
    """Each point's maximum, by pointer doubling: log2(longest path) passes over the grid."""
    while True:
        jumped = target[target]
        if np.array_equal(jumped, target):
            return target
        target = jumped


def _nearest_atoms(points: np.ndarray, atoms: Atoms, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Nearest atom (minimum image) and its distance (Å) of each point (Å)."""
    cell = atoms.cell.array
    nearest, distance = np.empty(len(points), dtype=int), np.empty(len(points))
    for start in range(0, len(points), chunk):
        vectors = minimum_image(points[start : start + chunk, None, :] - atoms.positions[None, :, :], cell)
        lengths = np.linalg.norm(vectors, axis=-1)
        nearest[start : start + chunk] = lengths.argmin(axis=1)
        distance[start : start + chunk] = lengths.min(axis=1)
    return nearest, distance


def bader_analysis(density: ChargeDensity) -> BaderResult:
    """Bader populations and volumes of the atoms of ``density`` (on-grid steepest ascent, see the module)."""
    rho = density.density
    cell = density.atoms.cell.array
    maxima_of_points = _follow_to_maxima(_ascent_targets(rho, cell))
    maxima, owner = np.unique(maxima_of_points, return_inverse=True)
    weight = density.voxel_volume
    charge_per_maximum = np.bincount(owner, weights=rho.ravel()) * weight
    points_per_maximum = np.bincount(owner)
    fractional = np.stack(np.unravel_index(maxima, rho.shape), axis=1) / np.asarray(rho.shape)
    atom_of_maximum, distance = _nearest_atoms(fractional @ cell, density.atoms)
    n_atoms = len(density.atoms)
    populations = np.bincount(atom_of_maximum, weights=charge_per_maximum, minlength=n_atoms)
    volumes = np.bincount(atom_of_maximum, weights=points_per_maximum, minlength=n_atoms) * weight
    # attractors of (near) empty space say nothing about the atoms
    significant = charge_per_maximum > 1e-3
    return BaderResult(
        populations=populations, volumes=volumes, n_maxima=int(len(maxima)),
        max_attractor_distance=float(distance[significant].max()) if significant.any() else 0.0,
        n_electrons=density.n_electrons,
    )  # fmt: skip


def check_valences(symbols: t.Iterable[str], valences: t.Mapping[str, float]) -> dict[str, float]:
    """``valences`` (element -> Z_val) as floats; raise naming every element of ``symbols`` without one."""
    missing = sorted(set(symbols) - set(valences))
    if missing:
        raise AnalysisInputError(
            f'no valence charge Z_val for {", ".join(missing)}; give `valences` with one per element (CP2K: the q '
            'of the GTH pseudopotential, e.g. Na 9 for GTH-PBE-q9; VASP: ZVAL of the POTCAR).'
        )
    try:
        return {element: float(valences[element]) for element in set(symbols)}
    except (TypeError, ValueError) as exc:
        raise AnalysisInputError(f'valences must be numbers (electrons), got {dict(valences)}.') from exc


def bader_charges(populations: np.ndarray, symbols: t.Sequence[str], valences: t.Mapping[str, float]) -> np.ndarray:
    """Net atomic charges ``Z_val - population`` (e): positive for cations."""
    valences = check_valences(symbols, valences)
    return np.array([valences[s] for s in symbols]) - np.asarray(populations, dtype=float)


def analyse_density_file(path, symbols: t.Sequence[str], positions, cell, valences: t.Mapping[str, float],
                         fmt: str | None = None) -> dict:  # fmt: skip
    """Read a density file of the structure (``symbols``, ``positions`` Å, ``cell`` Å), check it belongs to it, run
    the Bader analysis. Returns ``arrays`` (``charges`` e, ``populations`` e, ``volumes`` Å³, per atom) and a JSON-ready
    ``summary`` (electron counts, mean charge per element, attractors)."""
    valences = check_valences(symbols, valences)
    density = read_density(path, fmt)
    check_density_matches(density.atoms, symbols, positions, cell)
    result = bader_analysis(density)
    charges = bader_charges(result.populations, symbols, valences)
    expected = float(sum(valences[s] for s in symbols))
    symbols = list(symbols)
    per_element = {
        element: {'mean_charge': float(charges[mask].mean()), 'min_charge': float(charges[mask].min()),
                  'max_charge': float(charges[mask].max()), 'count': int(mask.sum())}
        for element in sorted(set(symbols)) for mask in [np.array(symbols) == element]
    }  # fmt: skip
    summary = {
        'format': density.source, 'grid': list(density.density.shape), 'n_electrons_density': result.n_electrons,
        'n_electrons_valence': expected, 'n_electrons_bader': float(result.populations.sum()),
        'total_charge': float(charges.sum()), 'valences': valences, 'per_element': per_element,
        'n_maxima': result.n_maxima, 'max_attractor_distance': result.max_attractor_distance,
        'method': 'on-grid steepest ascent (Henkelman et al. 2006), attractors to the nearest atom',
        'units': {'charges': 'e', 'populations': 'e', 'volumes': 'angstrom^3'},
    }  # fmt: skip
    arrays = {'charges': charges, 'populations': result.populations, 'volumes': result.volumes}
    return {'arrays': arrays, 'summary': summary}


def write_chgcar(path, atoms: Atoms, density: np.ndarray) -> None:
    """Write ``density`` (e/Å³ on a grid spanning ``atoms.cell``) as a VASP CHGCAR (ρ·V, as VASP writes it)."""
    from ase.calculators.vasp import VaspChargeDensity

    chgcar = VaspChargeDensity(filename=None)
    chgcar.atoms = [atoms]
    chgcar.chg = [np.asarray(density, dtype=float)]
    chgcar.write(str(path), format='chgcar')


def main(argv: t.Sequence[str] | None = None) -> int:
    """The Bader job: read ``bader_input.json`` (``density``, ``format``, ``symbols``, ``positions``, ``cell``,
    ``valences``), write ``bader.json`` (the summary) and ``bader.npz`` (per-atom arrays). A failure is written as
    ``{'error': message}`` to ``bader.json`` (exit status 1), for the parser to report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = pathlib.Path(argv[0] if argv else FILES['input'])
    folder = path.parent
    try:
        spec = json.loads(path.read_text())
        result = analyse_density_file(folder / spec['density'], spec['symbols'], spec['positions'], spec['cell'],
                                      spec['valences'], spec.get('format'))  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - every failure goes to the parser as one line
        (folder / FILES['results']).write_text(json.dumps({'error': f'{type(exc).__name__}: {exc}'}))
        return 1
    np.savez(folder / FILES['arrays'], **result['arrays'])
    (folder / FILES['results']).write_text(json.dumps(result['summary'], indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
