"""Bad inputs to ``analyse structure``, ``analyse trajectory`` and ``structures generate``: each gets one ``Error:``
line (never a traceback) and stores nothing, also with ``--store``. The cases are the rows of docs/bad_inputs.md
("Structures and analysis"); add a row there with every case added here."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_glassml.cli import cli

GLASS = pathlib.Path(__file__).parents[1] / 'data' / 'glasses' / 'Teter_300K_1.dat'
SYMBOLS = ['Na', 'Na', 'Fe', 'P', 'O', 'O', 'O', 'O']
TYPES = {'Fe': 1, 'Na': 2, 'O': 3, 'P': 4}


def _write_dump(path: pathlib.Path, column: str = 'element', n_frames: int = 6) -> pathlib.Path:
    rng = np.random.default_rng(0)
    positions = rng.random((len(SYMBOLS), 3)) * 8
    with path.open('w') as handle:
        for frame in range(n_frames):
            positions = positions + rng.normal(0, 0.3, positions.shape)
            handle.write(f'ITEM: TIMESTEP\n{frame * 100}\nITEM: NUMBER OF ATOMS\n{len(SYMBOLS)}\n'
                         f'ITEM: BOX BOUNDS pp pp pp\n0 8\n0 8\n0 8\nITEM: ATOMS id {column} xu yu zu\n')  # fmt: skip
            for i, symbol in enumerate(SYMBOLS):
                label = symbol if column == 'element' else TYPES[symbol]
                handle.write(f'{i + 1} {label} {positions[i, 0]:.4f} {positions[i, 1]:.4f} {positions[i, 2]:.4f}\n')
    return path


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict[str, pathlib.Path]:
    folder = tmp_path_factory.mktemp('bad_inputs')
    dump = _write_dump(folder / 'run.dump')
    lines = dump.read_text().splitlines(keepends=True)
    rows = 9 + len(SYMBOLS)  # lines per frame
    (folder / 'cut_row.dump').write_text(''.join(lines[: 2 * rows + 12]) + lines[2 * rows + 12][:14])
    (folder / 'cut_header.dump').write_text(''.join(lines[: 2 * rows + 3]))
    (folder / 'empty.xyz').write_text('')
    (folder / 'empty_dump.dump').write_text('')
    (folder / 'notes.txt').write_text('not a structure\n')
    (folder / 'text.xyz').write_text('not a structure\n')
    (folder / 'binary.dat').write_bytes(bytes(range(256)) * 4)
    (folder / 'out').mkdir()
    return {'glass': GLASS, 'dump': dump, 'typed': _write_dump(folder / 'typed.dump', 'type'), 'folder': folder,
            **{p.stem: p for p in folder.iterdir() if p.stem not in ('run', 'typed')}}  # fmt: skip


GENERATE = ['structures', 'generate', '--units', 'Na2O,P2O5', '--fractions', '0.5,0.5', '--atoms', '28']
TRAJECTORY = ['analyse', 'trajectory', '{dump}', '--timestep-ps', '0.1']

#: (arguments, a fragment of the one-line message); ``{name}`` is a file of the ``files`` fixture
CASES = [
    (['analyse', 'structure', '{glass}', '--store', '--cutoff', 'Fe-O=-2'], 'must be a positive number of Å'),
    (['analyse', 'structure', '{glass}', '--store', '--cutoff', 'Fe-0=2.0'], "'0' is not an element symbol"),
    (['analyse', 'structure', '{glass}', '--store', '--cutoff', 'Si-O=2.0'], 'the structure has no Si'),
    (['analyse', 'structure', '{glass}', '--store', '--formers', 'Xx,P'], "--formers 'Xx,P': not element symbols"),
    (['analyse', 'structure', '{glass}', '--store', '--anions', 'o'], "--anions 'o': not element symbols"),
    (['analyse', 'structure', '{empty}', '--store'], 'empty.xyz is empty'),
    (['analyse', 'structure', '{glass}', '--store', '--format', 'nosuch'], "unknown format 'nosuch'"),
    (['analyse', 'structure', '{notes}', '--store'], "no reader for 'txt'"),
    (['analyse', 'structure', '{text}', '--store', '--format', 'extxyz'], 'could not be read as extxyz'),
    (['analyse', 'structure', '{binary}', '--store'], 'is not a LAMMPS data file'),
    ([*TRAJECTORY, '-T', '700', '--store', '--stride', '0'], "'--stride': 0 is not in the range x>=1"),
    (['analyse', 'trajectory', '{typed}', '--timestep-ps', '0.1', '-T', '700', '--store', '--type-map',
      '1=Fe,2=Na,3=Xx,4=P'], "type 3 maps to 'Xx', which is not an element symbol"),
    (['analyse', 'trajectory', '{cut_row}', '--timestep-ps', '0.1', '-T', '700', '--store'],
     'frame 2 is truncated (4 of 8 atoms'),
    (['analyse', 'trajectory', '{cut_header}', '--timestep-ps', '0.1', '-T', '700', '--store'],
     'the header of frame 2 is cut'),
    (['analyse', 'trajectory', '{empty_dump}', '--timestep-ps', '0.1', '-T', '700', '--store'], 'is empty'),
    ([*TRAJECTORY, '-T', '-800', '--store'], 'temperature -800.0 K must be > 0'),
    ([*TRAJECTORY, '-T', '0'], 'temperature 0.0 K must be > 0'),
    ([*TRAJECTORY[:-1], '0', '-T', '700', '--store'], '--timestep-ps 0 must be > 0'),
    ([*TRAJECTORY, '-T', '700', '--store', '--species', 'Na,Xx'], "--species 'Na,Xx': not element symbols"),
    ([*TRAJECTORY, '--store'], 'needs the temperature of each file (-T)'),
    ([*GENERATE, '--strains', '-0.5,1.0'], 'strain factors [-0.5, 1.0] must be > 0'),
    ([*GENERATE, '--strains', '0.8,0.8'], 'repeat'),
    ([*GENERATE, '--output', '{folder}/missing/x.extxyz'], 'missing does not exist or is not a folder'),
    ([*GENERATE, '--output', '{out}'], 'is a directory'),
    ([*GENERATE, '--output', '{notes}/x.extxyz'], 'notes.txt does not exist or is not a folder'),
    ([*GENERATE, '--cell', '10,0,0,0,0,10,0,10,0'], 'is left-handed (negative determinant)'),
    ([*GENERATE, '--cell', '-10,10,10'], 'cell lengths [-10.0, 10.0, 10.0] must be > 0'),
]  # fmt: skip


@pytest.mark.parametrize(('args', 'message'), CASES, ids=[' '.join(args[1:]) for args, _ in CASES])
def test_bad_input_one_line_nothing_stored(args, message, files, aiida_profile, node_count):
    arguments = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    before = node_count()
    result = CliRunner().invoke(cli, ['-p', aiida_profile.name, *arguments])
    assert result.exit_code in (1, 2), result.output  # 2: click's usage errors
    assert isinstance(result.exception, SystemExit), result.exception
    assert 'Traceback' not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith('Error')]
    assert len(errors) == 1 and message in errors[0], result.output
    assert node_count() == before


def test_verbosity_before_and_after_the_subcommand(monkeypatch, files):
    """``-v LEVEL`` goes before the subcommand as in ``verdi`` (and still works after it)."""
    from aiida.common import log

    for args in (['-v', 'debug', 'analyse', 'structure', str(files['glass']), '--cutoff', 'Fe-0=2'],
                 ['analyse', 'structure', '-v', 'debug', str(files['glass']), '--cutoff', 'Fe-0=2']):  # fmt: skip
        monkeypatch.setattr(log, 'CLI_ACTIVE', False)
        monkeypatch.setattr(log, 'CLI_LOG_LEVEL', None)
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1 and "'0' is not an element symbol" in result.output, result.output
        assert log.CLI_LOG_LEVEL == 'DEBUG'
    monkeypatch.undo()
    log.configure_logging(with_orm=True)  # back to the other tests' logging, the database handler included


def test_unwritable_output_is_refused_before_storing(monkeypatch, tmp_path, capsys):
    """Root may write anywhere, so the permission check is exercised with ``os.access`` saying no."""
    import os

    from aiida_glassml.cli.utils import check_output_file

    check_output_file(tmp_path / 'x.extxyz')  # fine
    monkeypatch.setattr(os, 'access', lambda *args: False)
    with pytest.raises(SystemExit):
        check_output_file(tmp_path / 'x.extxyz')
    assert 'x.extxyz is not writable' in capsys.readouterr().err


def test_library_checks_refuse_what_the_cli_refuses(files):
    """The work chain and the generators validate with the same pure checks, so they refuse too."""
    from aiida_glassml.analysis import AnalysisInputError, dynamics
    from aiida_glassml.analysis.dynamics_summary import fill_dynamics_parameters
    from aiida_glassml.analysis.io import iter_trajectory
    from aiida_glassml.structures import StructureGenerationError
    from aiida_glassml.structures.generate import validate_settings

    traj = dynamics.read_trajectory(files['dump'], timestep_ps=0.1)
    for temperature in (0.0, -800.0, float('nan')):
        with pytest.raises(AnalysisInputError, match='must be > 0'):
            fill_dynamics_parameters(traj, {'temperature': temperature})
    with pytest.raises(AnalysisInputError, match='step 0 must be an integer >= 1'):
        next(iter_trajectory(files['dump'], step=0))
    with pytest.raises(StructureGenerationError, match='left-handed'):
        validate_settings({'cell': [[10, 0, 0], [0, 0, 10], [0, 10, 0]]})
