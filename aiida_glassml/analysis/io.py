"""Readers for structures and trajectories: LAMMPS data and dump files (own parsers, streaming), and extxyz,
POSCAR/CONTCAR and XDATCAR through ASE. Everything returns ASE ``Atoms``.

LAMMPS files carry atom types, not elements. Types are mapped to elements by, in order: an explicit
``type_to_element`` map, an ``element`` column (dumps), or the ``Masses`` section (data files; for dumps pass
``masses=`` or ``data_file=``). Each frame read from LAMMPS keeps the original ids (``atoms.arrays['id']``), the types
(``atoms.arrays['type']``) and, when present, image flags (``atoms.arrays['image']``, int, shape (N, 3)). Atoms are
sorted by id so that every frame of a dump has the same order.
"""

from __future__ import annotations

import itertools
import pathlib
import typing as t

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, chemical_symbols

from .errors import AnalysisInputError, TrajectoryMismatchError, UnknownAtomTypeError

__all__ = (
    'FORMATS',
    'check_format',
    'check_type_map',
    'detect_format',
    'element_from_mass',
    'iter_lammps_dump',
    'iter_trajectory',
    'read_experimental_curve',
    'read_lammps_data',
    'read_structure',
)

#: format names understood by :func:`read_structure` / :func:`iter_trajectory` besides any ASE format name.
FORMATS = ('lammps-data', 'lammps-dump', 'extxyz', 'vasp', 'vasp-xdatcar')

_ATOM_STYLE_COLUMNS = {
    # style: (index of type, index of charge or None, index of x) in a row of the Atoms section
    'atomic': (1, None, 2),
    'charge': (1, 2, 3),
    'full': (2, 3, 4),
    'molecular': (2, None, 3),
}


def element_from_mass(mass: float, tolerance: float = 0.1) -> str:
    """Return the element whose standard atomic mass is nearest to ``mass`` (amu), within ``tolerance``."""
    masses = np.asarray(atomic_masses[1:], dtype=float)
    index = int(np.argmin(np.abs(masses - mass)))
    if abs(masses[index] - mass) > tolerance:
        raise UnknownAtomTypeError(
            f'no element has a mass within {tolerance} amu of {mass}; pass `type_to_element` explicitly '
            '(e.g. {1: "Fe", 2: "Na"}).'
        )
    return chemical_symbols[index + 1]


def check_type_map(type_to_element: dict) -> dict[int, str]:
    """``{type: element}`` with integer types and real element symbols, else :class:`UnknownAtomTypeError`."""
    mapping = {}
    for key, element in type_to_element.items():
        try:
            atom_type = int(key)
        except (TypeError, ValueError):
            raise UnknownAtomTypeError(f'atom type {key!r} is not an integer; map types as {{1: "Fe"}}.') from None
        if element not in chemical_symbols[1:]:
            raise UnknownAtomTypeError(
                f'type {atom_type} maps to {element!r}, which is not an element symbol; use e.g. 1=Fe,2=Na,3=O,4=P.'
            )
        mapping[atom_type] = element
    return mapping


def check_format(format: str | None) -> None:  # noqa: A002
    """Refuse a format name that is neither one of :data:`FORMATS` nor an ASE format, before any file is read."""
    if not format or format in FORMATS:
        return
    from ase.io.formats import ioformats

    if format not in ioformats:
        raise AnalysisInputError(
            f'unknown format {format!r}; use one of {", ".join(FORMATS)} or an ASE format name (`ase info --formats`).'
        )


def _ase_read(path: pathlib.Path, format: str | None, index):  # noqa: A002
    """``ase.io.read`` with its many exception types (and StopIteration on an empty file) turned into one line."""
    import ase.io

    if path.stat().st_size == 0:
        raise AnalysisInputError(f'{path} is empty.')
    try:
        return ase.io.read(path, index=index, format=format)
    except StopIteration:
        raise AnalysisInputError(f'{path} holds no structure{f" in {format} format" if format else ""}.') from None
    except Exception as exc:  # noqa: BLE001 - ASE raises anything from KeyError to UnknownFileTypeError
        raise AnalysisInputError(_unreadable(path, format, exc)) from exc


def _unreadable(path, format, exc) -> str:  # noqa: A002
    from ase.io.formats import UnknownFileTypeError

    how = f'as {format}' if format else 'in a format ASE recognises from its name or content'
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, UnknownFileTypeError):
        detail = f'no reader for {detail!r}'
    return f'{path} could not be read {how} ({detail}); check the file, or give --format (lammps-data, extxyz, ...).'


def detect_format(path: str | pathlib.Path) -> str:
    """Guess the file format from its name: ``.data/.dat/.lmp`` LAMMPS data, ``.dump/.lammpstrj`` LAMMPS dump,
    ``.xyz/.extxyz`` extxyz, ``POSCAR/CONTCAR/*.vasp`` POSCAR, ``XDATCAR*`` XDATCAR; anything else is left to ASE."""
    path = pathlib.Path(path)
    name, suffix = path.name.upper(), path.suffix.lower()
    if suffix in ('.data', '.dat', '.lmp') or name.startswith('DATA.'):
        return 'lammps-data'
    if suffix in ('.dump', '.lammpstrj') or name.startswith('DUMP.'):
        return 'lammps-dump'
    if suffix in ('.xyz', '.extxyz'):
        return 'extxyz'
    if name.startswith('XDATCAR'):
        return 'vasp-xdatcar'
    if name.startswith(('POSCAR', 'CONTCAR')) or suffix == '.vasp':
        return 'vasp'
    return ''


def _type_map_from_masses(masses: dict[int, float]) -> dict[int, str]:
    return {atom_type: element_from_mass(mass) for atom_type, mass in masses.items()}


def _resolve_types(types: np.ndarray, type_to_element: dict | None, masses: dict | None, source: str) -> list[str]:
    if type_to_element is None and masses:
        type_to_element = _type_map_from_masses(masses)
    if type_to_element is None:
        raise UnknownAtomTypeError(
            f'{source} has atom types {sorted(set(types.tolist()))} but no Masses and no element names, so they '
            'cannot be mapped to elements; pass `type_to_element` (e.g. {1: "Fe", 2: "Na", 3: "O", 4: "P"}), or add a '
            'Masses section (for dumps: pass `masses` or `data_file`).'
        )
    type_to_element = check_type_map(type_to_element)
    missing = sorted(set(types.tolist()) - set(type_to_element))
    if missing:
        raise UnknownAtomTypeError(
            f'{source} has atom types {missing} with no element (known: {type_to_element}); add them to '
            '`type_to_element` or to the Masses section.'
        )
    return [type_to_element[int(x)] for x in types]


def read_lammps_data(
    path: str | pathlib.Path, atom_style: str | None = None, type_to_element: dict[int, str] | None = None
) -> Atoms:
    """Read a LAMMPS data file (atom styles atomic, charge, full, molecular; orthogonal or triclinic box).

    The atom style comes from ``atom_style``, else from the ``Atoms # style`` comment, else from the column count
    (5/8 atomic, 6/9 charge). Types map to elements through ``type_to_element`` or the Masses section. Charges of
    the charge/full styles land in ``atoms.get_initial_charges()``; velocities are ignored.
    """
    path = pathlib.Path(path)
    try:
        return _read_lammps_data(path, path.read_text(errors='replace').splitlines(), atom_style, type_to_element)
    except AnalysisInputError:
        raise
    except (ValueError, IndexError) as exc:  # a number where a word is, a ragged Atoms row, a cut file
        raise AnalysisInputError(f'{path} is not a readable LAMMPS data file ({exc}); check the format.') from None


def _read_lammps_data(path: pathlib.Path, lines: list[str], atom_style, type_to_element) -> Atoms:
    n_atoms = None
    bounds = {}
    tilt = (0.0, 0.0, 0.0)
    masses: dict[int, float] = {}
    atom_rows: list[list[str]] = []
    style = atom_style
    index = 1  # first line is a comment by definition
    section = None
    while index < len(lines):
        line = lines[index].split('#', 1)
        content = line[0].strip()
        index += 1
        if not content:
            continue
        words = content.split()
        if section is None and len(words) >= 2 and words[-1] == 'atoms':
            n_atoms = int(words[0])
        elif section is None and len(words) == 4 and words[-1] in ('xhi', 'yhi', 'zhi'):
            bounds[words[-1][0]] = (float(words[0]), float(words[1]))
        elif section is None and len(words) == 6 and words[3:] == ['xy', 'xz', 'yz']:
            tilt = tuple(float(x) for x in words[:3])
        elif words[0] in ('Masses', 'Atoms', 'Velocities', 'Bonds', 'Angles', 'Dihedrals', 'Impropers') or (
            words[0].endswith('Coeffs') and len(words) == 1
        ):
            section = words[0]
            if section == 'Atoms' and style is None and len(line) > 1:
                style = line[1].strip().split('/')[0] or None
        elif section == 'Masses':
            masses[int(words[0])] = float(words[1])
        elif section == 'Atoms':
            atom_rows.append(words)
    if n_atoms is None or len(bounds) != 3:
        raise AnalysisInputError(f'{path} is not a LAMMPS data file (no atom count or no box bounds); check the format.')
    if len(atom_rows) != n_atoms:
        raise AnalysisInputError(f'{path} declares {n_atoms} atoms but its Atoms section has {len(atom_rows)} rows.')
    n_columns = len(atom_rows[0]) if atom_rows else 5
    if style is None:
        style = {5: 'atomic', 8: 'atomic', 6: 'charge', 9: 'charge'}.get(n_columns)
    if style not in _ATOM_STYLE_COLUMNS:
        raise AnalysisInputError(
            f'{path}: atom style {style!r} is not supported; pass atom_style= one of {sorted(_ATOM_STYLE_COLUMNS)}.'
        )
    type_col, charge_col, x_col = _ATOM_STYLE_COLUMNS[style]
    table = np.array(atom_rows, dtype=float).reshape(n_atoms, -1)
    order = np.argsort(table[:, 0], kind='stable')
    table = table[order]
    types = table[:, type_col].astype(int)
    symbols = _resolve_types(types, type_to_element, masses, str(path))
    origin = np.array([bounds['x'][0], bounds['y'][0], bounds['z'][0]])
    lengths = np.array([bounds[k][1] - bounds[k][0] for k in 'xyz'])
    cell = np.diag(lengths)
    cell[1, 0], cell[2, 0], cell[2, 1] = tilt
    atoms = Atoms(symbols=symbols, positions=table[:, x_col : x_col + 3] - origin, cell=cell, pbc=True)
    atoms.arrays['id'] = table[:, 0].astype(int)
    atoms.arrays['type'] = types
    if table.shape[1] >= x_col + 6:
        atoms.arrays['image'] = table[:, x_col + 3 : x_col + 6].astype(int)
    if charge_col is not None:
        atoms.set_initial_charges(table[:, charge_col])
    atoms.info['lammps_masses'] = masses
    return atoms


def _dump_cell(bound_lines: list[str], header: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([[float(x) for x in line.split()] for line in bound_lines])
    if 'xy' in header:
        (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = values[:, :3]
        xlo = xlo_b - min(0.0, xy, xz, xy + xz)
        xhi = xhi_b - max(0.0, xy, xz, xy + xz)
        ylo, yhi = ylo_b - min(0.0, yz), yhi_b - max(0.0, yz)
    else:
        (xlo, xhi), (ylo, yhi), (zlo, zhi) = values[:, :2]
        xy = xz = yz = 0.0
    cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


def iter_lammps_dump(
    path: str | pathlib.Path,
    type_to_element: dict[int, str] | None = None,
    masses: dict[int, float] | None = None,
    data_file: str | pathlib.Path | None = None,
) -> t.Iterator[Atoms]:
    """Stream the frames of a LAMMPS text dump, one ``Atoms`` at a time (memory: one frame).

    Positions are taken from ``x y z`` (wrapped), else ``xu yu zu`` (unwrapped), else scaled ``xs ys zs`` /
    ``xsu ysu zsu``. Image flags ``ix iy iz`` go to ``atoms.arrays['image']``; ``atoms.info['timestep']`` and
    ``atoms.info['unwrapped']`` (bool) say what was read. Atoms are sorted by id.
    """
    path = pathlib.Path(path)
    if data_file is not None and masses is None and type_to_element is None:
        type_to_element = {int(k): v for k, v in zip(*_types_of_data_file(data_file))}
    type_map = dict(type_to_element) if type_to_element else (_type_map_from_masses(masses) if masses else None)
    with path.open(errors='replace') as handle:
        frame_index = 0
        while True:
            line = handle.readline()
            if not line:
                return
            if not line.startswith('ITEM: TIMESTEP'):
                if line.strip():
                    raise AnalysisInputError(f'{path}: expected "ITEM: TIMESTEP", got {line.strip()!r}; is it a text dump?')
                continue
            try:
                timestep = int(handle.readline().split()[0])
                handle.readline()  # ITEM: NUMBER OF ATOMS
                n_atoms = int(handle.readline())
                header = handle.readline()
                cell, origin = _dump_cell([handle.readline() for _ in range(3)], header)
                columns = handle.readline().split()[2:]
            except (ValueError, IndexError):  # a dump cut inside a header, or not a dump
                raise AnalysisInputError(
                    f'{path}: the header of frame {frame_index} is cut or malformed; is the file complete? (a dump '
                    'still being written, or cut: keep only whole frames).'
                ) from None
            rows = list(itertools.islice(handle, n_atoms))
            if len(rows) != n_atoms or (rows and not rows[-1].endswith('\n')):
                raise AnalysisInputError(f'{path}: frame {frame_index} is truncated ({len(rows)} of {n_atoms} atoms, '
                                         'the last one possibly cut); is the file complete?')  # fmt: skip
            try:
                frame = _dump_frame(path, rows, columns, cell, origin, timestep, type_map)
            except (ValueError, IndexError, KeyError) as exc:
                if isinstance(exc, AnalysisInputError):
                    raise
                raise AnalysisInputError(f'{path}: frame {frame_index} has a malformed atom row or column ({exc}); '
                                         'is the file complete and a LAMMPS text dump?') from None  # fmt: skip
            yield frame
            frame_index += 1


def _dump_frame(path, rows, columns, cell, origin, timestep, type_map) -> Atoms:
    column = {name: i for i, name in enumerate(columns)}
    element_col = column.pop('element', None)
    if element_col is not None:
        split = [row.split() for row in rows]
        elements = np.array([r[element_col] for r in split])
        numeric = [c for c in range(len(columns)) if c != element_col]
        table = np.array([[r[c] for c in numeric] for r in split], dtype=float)
        column = {columns[c]: i for i, c in enumerate(numeric)}
    else:
        table = np.loadtxt(rows, dtype=float, ndmin=2)
        elements = None
    if 'id' in column:
        order = np.argsort(table[:, column['id']], kind='stable')
        table = table[order]
        if elements is not None:
            elements = elements[order]
    types = table[:, column['type']].astype(int) if 'type' in column else None
    if elements is not None:
        symbols = list(elements)
    else:
        if types is None:
            raise UnknownAtomTypeError(f'{path}: the dump has neither a type nor an element column; dump `type`.')
        symbols = _resolve_types(types, type_map, None, str(path))
    unwrapped = False
    for names, scaled, is_unwrapped in (
        (('x', 'y', 'z'), False, False),
        (('xu', 'yu', 'zu'), False, True),
        (('xs', 'ys', 'zs'), True, False),
        (('xsu', 'ysu', 'zsu'), True, True),
    ):
        if all(n in column for n in names):
            xyz = table[:, [column[n] for n in names]]
            positions = xyz @ cell if scaled else xyz - origin
            unwrapped = is_unwrapped
            break
    else:
        raise AnalysisInputError(f'{path}: the dump has no position columns (x y z, xu yu zu, xs ys zs); dump them.')
    atoms = Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)
    if 'id' in column:
        atoms.arrays['id'] = table[:, column['id']].astype(int)
    if types is not None:
        atoms.arrays['type'] = types
    if all(n in column for n in ('ix', 'iy', 'iz')):
        atoms.arrays['image'] = table[:, [column['ix'], column['iy'], column['iz']]].astype(int)
    atoms.info['timestep'] = timestep
    atoms.info['unwrapped'] = unwrapped
    return atoms


def _types_of_data_file(path) -> tuple[list[int], list[str]]:
    masses = read_lammps_data(path).info['lammps_masses']
    mapping = _type_map_from_masses(masses)
    return list(mapping), list(mapping.values())


def _check_same_atoms(reference: Atoms, frame: Atoms, index: int, path) -> None:
    if len(frame) != len(reference):
        raise TrajectoryMismatchError(
            f'{path}: frame {index} has {len(frame)} atoms but frame 0 has {len(reference)}; a trajectory needs a '
            'fixed atom count (dump a fixed group, and no deleted or inserted atoms).'
        )
    if not np.array_equal(frame.numbers, reference.numbers) or (
        'id' in frame.arrays and 'id' in reference.arrays and not np.array_equal(frame.arrays['id'], reference.arrays['id'])
    ):
        raise TrajectoryMismatchError(
            f'{path}: frame {index} lists the atoms in a different order from frame 0; write the dump with '
            '`dump_modify sort id` (or include the id column so frames can be sorted).'
        )


def read_structure(
    path: str | pathlib.Path, format: str | None = None, index: int = -1, **kwargs
) -> Atoms:  # noqa: A002
    """Read one structure. For trajectory formats ``index`` picks the frame (default: the last).

    ``format`` is one of :data:`FORMATS` or an ASE format name; ``None`` guesses from the file name. ``kwargs`` go
    to the LAMMPS readers (``type_to_element``, ``atom_style``, ``masses``, ``data_file``).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise AnalysisInputError(f'{path} does not exist or is not a file.')
    check_format(format)
    format = format or detect_format(path)  # noqa: A001
    if path.stat().st_size == 0:
        raise AnalysisInputError(f'{path} is empty.')
    if format == 'lammps-data':
        return read_lammps_data(path, **kwargs)
    if format == 'lammps-dump':
        if index == -1:
            last = None
            for last in iter_lammps_dump(path, **kwargs):
                pass
            if last is None:
                raise AnalysisInputError(f'{path} contains no frames.')
            return last
        return next(itertools.islice(iter_lammps_dump(path, **kwargs), index, None))
    return _ase_read(path, format or None, index)


def iter_trajectory(
    path: str | pathlib.Path,
    format: str | None = None,  # noqa: A002
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    check: bool = True,
    **kwargs,
) -> t.Iterator[Atoms]:
    """Stream frames ``start:stop:step`` of a trajectory (LAMMPS dump, extxyz, XDATCAR or any ASE format).

    With ``check`` every frame is compared with the first one and a :class:`TrajectoryMismatchError` is raised
    when the atom count or order changes.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise AnalysisInputError(f'{path} does not exist or is not a file.')
    check_format(format)
    for name, value, least in (('start', start, 0), ('step', step, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise AnalysisInputError(f'{name} {value!r} must be an integer >= {least} (frames are read {name}::step).')
    format = format or detect_format(path)  # noqa: A001
    if path.stat().st_size == 0:
        raise AnalysisInputError(f'{path} is empty.')
    if format == 'lammps-dump':
        frames = itertools.islice(iter_lammps_dump(path, **kwargs), start, stop, step)
    elif format == 'lammps-data':
        frames = iter([read_lammps_data(path, **kwargs)])
    else:
        import ase.io

        frames = ase.io.iread(path, index=slice(start, stop, step), format=format or None)
    reference = None
    index = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except AnalysisInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - ASE's readers raise anything on a bad or cut file
            raise AnalysisInputError((f'frame {index}: ' if index else '') + _unreadable(path, format, exc)) from exc
        if reference is None:
            reference = frame
        elif check:
            _check_same_atoms(reference, frame, index, path)
        yield frame
        index += 1
    if reference is None:
        raise AnalysisInputError(f'{path} holds no frames{f" in {format} format" if format else ""}.')


def read_experimental_curve(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """An experimental curve (S(Q), F(Q), T(r), G(r), ...) from a text file: the first two numeric columns are x and
    y; lines starting with ``#`` and non-numeric header lines are skipped. Returns (x, y) sorted by x."""
    rows = []
    with open(path, encoding='utf-8', errors='replace') as handle:
        for line in handle:
            parts = line.replace(',', ' ').split()
            if not parts or parts[0].startswith('#'):
                continue
            try:
                rows.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                if rows:  # a header is fine; text between data rows is not
                    raise AnalysisInputError(
                        f'{path}: line {line.strip()!r} is not two numbers; give x and y in two columns.'
                    ) from None
    data = np.array(rows, dtype=float).reshape(-1, 2)
    if len(data) < 2 or not np.isfinite(data).all():
        raise AnalysisInputError(
            f'{path}: found {len(data)} finite data rows; an experimental curve needs at least two x y rows.'
        )
    order = np.argsort(data[:, 0], kind='stable')
    return data[order, 0], data[order, 1]
