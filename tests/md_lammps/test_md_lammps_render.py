"""LAMMPS input rendering (pure): regression of the pace, pace/extrapolation, Kokkos and classical inputs, and
bad input refused with the fix named."""

import numpy as np
import pytest

from aiida_glassml.md import lammps as render
from aiida_glassml.md import potentials
from aiida_glassml.md import protocol as md

KINDS = [('P', 'P'), ('O', 'O'), ('Na', 'Na'), ('Fe', 'Fe')]
SYMBOLS = [symbol for _, symbol in KINDS]


def _short_protocol(**kwargs):
    return md.melt_quench(time_scale=0.001, cooling_rate=1000.0, dump_interval=100, thermo_interval=10, **kwargs)


def test_pace_input(file_regression):
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS)
    file_regression.check(render.render_input(_short_protocol(), block, SYMBOLS), extension='.in')


def test_pace_extrapolation_input(file_regression):
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS, extrapolation=True)
    protocol = _short_protocol(gamma=md.GammaTracking(interval=10, gamma_lo=2.5, gamma_hi=30.0))
    text = render.render_input(protocol, block, SYMBOLS)
    assert 'fix pace_gamma all pair 10 pace/extrapolation gamma 1' in text
    assert 'compute max_pace_gamma all reduce max f_pace_gamma' in text
    assert 'fix gamma_halt all halt 10 v_max_pace_gamma >= 30 error soft' in text
    file_regression.check(text, extension='.in')


def test_kokkos_command_line_and_input(file_regression):
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS)
    cmdline = render.command_line(kokkos=True, gpus=1)
    assert cmdline[:12] == ['-k', 'on', 'g', '1', '-sf', 'kk', '-pk', 'kokkos', 'newton', 'on', 'neigh', 'half']
    text = (f'# lmp {" ".join(cmdline)}\n# {render.scheduler_gpu_commands(1)}\n'
            + render.render_input(_short_protocol(thermostat='langevin'), block, SYMBOLS))
    file_regression.check(text, extension='.in')


def test_bmp_classical_input(file_regression):
    block, species = render.classical_block(potentials.bmp(), KINDS)
    assert species == ['P', 'O', 'Na', 'Fe']
    assert set(block.files) == {potentials.NB3B_FILE}
    text = render.render_input(_short_protocol(), block, SYMBOLS) + '\n# ' + potentials.NB3B_FILE + '\n'
    file_regression.check(text + block.files[potentials.NB3B_FILE], extension='.in')


def test_kokkos_without_gpu_is_refused():
    with pytest.raises(render.LammpsInputError, match='no GPU resource'):
        render.command_line(kokkos=True, gpus=0)


def test_potential_not_covering_the_structure_is_refused():
    with pytest.raises(potentials.PotentialError, match=r"does not cover element\(s\) \['Fe'\].*Choose a potential"):
        render.classical_block(potentials.teter(), KINDS)
    with pytest.raises(render.LammpsInputError, match="no parameters for \\['Fe'\\]"):
        render.ace_block(['P', 'O', 'Na'], KINDS)


def test_gamma_needs_an_extrapolation_potential():
    block, _ = render.classical_block(potentials.bmp(), KINDS)
    protocol = _short_protocol(gamma=md.GammaTracking(interval=10))
    with pytest.raises(render.LammpsInputError, match='pace/extrapolation'):
        render.render_input(protocol, block, SYMBOLS)


def test_vanadium_needs_named_valence_kinds():
    with pytest.raises(potentials.PotentialError, match="several species.*'V4'"):
        potentials.bmp().check_covers([('V', 'V'), ('O', 'O')])
    assert potentials.bmp().check_covers([('V4', 'V'), ('V5', 'V'), ('O', 'O')]) == ['V4', 'V5', 'O']


def test_three_body_terms_without_a_native_form_are_refused_unless_dropped():
    bmp = potentials.bmp()
    term = {'form': 'cosine_harmonic', 'center': 'O', 'ends': ('P', 'P'), 'K': 1.0, 'theta0': 109.0, 'rho': 1.0,
            'cutoff': 3.0}
    custom = potentials.custom(**{**bmp.to_dict(), 'name': 'bmp-cos', 'three_body': [term]})
    with pytest.raises(potentials.PotentialError, match='P-O-P.*not supported.*drop_three_body=True'):
        custom.lammps_lines(['P', 'O'])
    lines, files = custom.lammps_lines(['P', 'O'], drop_three_body=True)
    assert not any('nb3b' in line for line in lines) and not files


def test_screened_three_body_file_halves_k():
    text = potentials.nb3b_screened_file(potentials.bmp().active_three_body(['P', 'O']), 'bmp')
    assert 'P O O 32.500000 109.4700 1.0 2.5' in text  # former-centred O-P-O (thesis "P-O-P")
    assert len([line for line in text.splitlines() if not line.startswith('#')]) == 8


def test_du_short_range_correction_is_tabulated_and_continuous():
    du = potentials.du()
    lines, files = du.lammps_lines(['Na', 'P', 'O'])
    assert lines[0].startswith('pair_style hybrid/overlay coul/long 10 table linear')
    assert set(files) == {potentials.TABLE_FILE}
    for key in ('O-O', 'O-P', 'Na-O'):
        assert f'{key.replace("-", "_")}\nN {potentials.TABLE_POINTS}' in files[potentials.TABLE_FILE]
        jumps = potentials.src_continuity(du.pairs[key])
        # B and D are refitted: energy and force continuous at r_s (the published ones jump by up to 0.5 %)
        assert abs(jumps['energy_jump']) < 1e-5 and abs(jumps['force_jump']) < 1e-4, (key, jumps)
    for key, pair in du.pairs.items():
        # LAMMPS's "force inconsistent with -dE/dr" check: only the potential's own inflection point, not r_s
        flagged = potentials.table_inconsistent_radii(pair)
        assert len(flagged) == 1 and abs(flagged[0] - pair['r_s']) > 0.5, (key, flagged)
        published = potentials.table_inconsistent_radii({**pair, 'B': pair['B_published'], 'D': pair['D_published']})
        assert np.min(np.abs(published - pair['r_s'])) < 0.01, (key, published)  # the published splice is flagged
        assert pair['B'] == pytest.approx(pair['B_published'], rel=0.005 if key != 'O-V5' else 0.15)
    r = np.array([1.0, 2.0])
    energy, force = potentials.buckingham_src_energy(r, du.pairs['O-P'])
    assert energy[0] > energy[1] and force[0] > 0


def test_bmp_three_body_terms_are_former_centred_and_documented():
    bmp = potentials.bmp()
    assert {(term['center'], term['ends']) for term in bmp.three_body} == {
        ('P', ('O', 'O')), ('V4', ('O', 'O')), ('V5', ('O', 'O'))}
    assert 'former-centred' in bmp.notes and 'P-O-V' in bmp.notes and 'NOT included' in bmp.notes
    assert 'P-P Buckingham repulsion A 5.093669 eV' in bmp.notes  # issue 13 item 11: not 5093.669
    assert bmp.extra_pairs['P-P']['A'] == 5.093669 and not potentials.bmp(p_p_repulsion=False).extra_pairs


def test_neighbor_limits_keep_page_at_least_ten_times_one():
    assert render.neighbor_limits() == ''
    assert render.neighbor_limits(4000) == ' one 4000 page 100000'
    assert render.neighbor_limits(16000, 100000) == ' one 16000 page 160000'
    with pytest.raises(render.LammpsInputError, match='neigh_one` must be a positive integer'):
        render.neighbor_limits(-1)


def test_gpu_requests_are_read_from_scheduler_commands():
    assert render.gpus_in_scheduler_commands('#SBATCH --gres=gpu:a100:2') == 2
    assert render.gpus_in_scheduler_commands('#PBS -l select=1:ngpus=1') == 1
    assert render.resolve_gpus(True, None, '#SBATCH --gpus=4') == 4
    with pytest.raises(render.LammpsInputError, match='no GPU resource'):
        render.resolve_gpus(True, 0, '#SBATCH -N 1')
    with pytest.raises(render.LammpsInputError, match='give the same number'):
        render.resolve_gpus(True, 1, '#SBATCH --gres=gpu:2')


def test_data_file_round_trips_positions():
    cell = np.diag([10.0, 11.0, 12.0])
    positions = np.array([[1.0, 2.0, 3.0], [9.5, 10.5, 0.5]])
    text = render.write_data_file(cell, positions, [1, 2], [22.99, 15.999], 'charge', ['Na', 'O'])
    assert '2 atoms' in text and '0.0 11.0000000000 ylo yhi' in text
    assert '2 2 0.0 9.5000000000 10.5000000000 0.5000000000' in text


def test_kokkos_runs_on_gpus_or_openmp_threads_with_the_same_input():
    assert render.command_line(kokkos=True, threads=1)[:12] == ['-k', 'on', 't', '1', '-sf', 'kk', '-pk', 'kokkos',
                                                                'newton', 'on', 'neigh', 'half']  # fmt: skip
    assert render.command_line(kokkos=True, gpus=2)[:4] == ['-k', 'on', 'g', '2']
    assert render.resolve_gpus(True, None, '#SBATCH --gpus=1', threads=1) == 0  # threads: no GPU request
    with pytest.raises(render.LammpsInputError, match='not both'):
        render.command_line(kokkos=True, gpus=1, threads=1)
    with pytest.raises(render.LammpsInputError, match='without `kokkos`'):
        render.command_line(threads=4)
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS)
    render.check_kokkos_threads(block, kokkos=True, threads=1)
    render.check_kokkos_threads(block, kokkos=False, threads=8)
    with pytest.raises(render.LammpsInputError, match='at most 1 CPU thread'):
        render.check_kokkos_threads(block, kokkos=True, threads=4)
    classical, _ = render.classical_block(potentials.bmp(), KINDS)
    render.check_kokkos_threads(classical, kokkos=True, threads=4)  # no limit of its own


def test_gamma_thresholds_are_written_exactly_and_checked_at_the_start():
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS, extrapolation=True)
    gamma = md.GammaTracking(interval=10, gamma_lo=1.2345678901, gamma_hi=2.4828779123456)
    text = render.render_input(md.MDProtocol([md.NVT(300.0, 0.1)], gamma=gamma), block, SYMBOLS)
    assert 'v_max_pace_gamma >= 2.4828779123456 error soft' in text
    assert 'variable dump_skip equal "c_max_pace_gamma < 1.2345678901"' in text
    # fix halt never sees step 0: a run 0 and a check before the first MD run
    start = text.index('run 0 post no')
    assert start < text.index('run 100') and 'if "${max_pace_gamma} >= 2.4828779123456" then "jump SELF gamma_halt"' \
        in text[start:text.index('run 100')]
    assert 'fix pace_gamma all pair 1 ' not in text  # 100 steps: the last step is on the interval


def test_a_last_step_off_the_gamma_interval_is_still_checked():
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS, extrapolation=True)
    protocol = md.MDProtocol([md.NVT(300.0, 0.105)], gamma=md.GammaTracking(interval=10, gamma_lo=2.5, gamma_hi=30.0))
    text = render.render_input(protocol, block, SYMBOLS)
    tail = text[text.index('run 105'):text.index('label gamma_halt')]
    assert 'fix pace_gamma all pair 1 pace/extrapolation gamma 1' in tail
    assert 'print "$(step) ${max_pace_gamma}" append gamma.dat screen no' in tail
    assert 'if "${max_pace_gamma} >= 30" then "jump SELF gamma_halt"' in tail


def test_a_minimisation_after_md_keeps_the_step_count_and_the_dumps():
    """LAMMPS resets the step only without dumps: they are undumped and redefined to append."""
    block = render.ace_block(['P', 'O', 'Na', 'Fe'], KINDS, extrapolation=True)
    protocol = md.MDProtocol([md.NVT(300.0, 0.02), md.Minimize(maxiter=10), md.NVT(300.0, 0.02)], dump_interval=10,
                             gamma=md.GammaTracking(interval=10, gamma_lo=2.5, gamma_hi=30.0))  # fmt: skip
    text = render.render_input(protocol, block, SYMBOLS)
    stage = text[text.index('# stage 1: minimize'):text.index('# stage 2')]
    assert stage.index('undump trajectory') < stage.index('minimize 0') < stage.index('reset_timestep 20')
    assert 'undump extrapolative' in stage
    assert 'dump_modify trajectory sort id element P O Na Fe format float %.15g append yes' in stage
    assert 'dump_modify extrapolative skip v_dump_skip sort id element P O Na Fe format float %.15g append yes' in stage
    assert text.rstrip().endswith('print "GLASSML_END step $(step)"')


def test_repeated_gamma_and_thermo_steps_keep_their_last_line():
    from aiida_glassml.md import lammps_parsing

    steps, gamma = lammps_parsing.parse_gamma('# step max_gamma\n0 1.5\n0 1.5\n10 2.0\n10 2.25\n20 3.0\n')
    assert steps.tolist() == [0, 10, 20] and gamma.tolist() == [1.5, 2.25, 3.0]


LMP_HELP = '''
Large-scale Atomic/Molecular Massively Parallel Simulator - 4 Feb 2025

KOKKOS package API: CUDA Serial
KOKKOS package precision: double

Installed packages:

KOKKOS KSPACE ML-PACE

List of individual style options included in this LAMMPS executable

* Pair styles:

born            buck/coul/long  pace            pace/extrapolation
pace/extrapolation/kk           pace/kk

* Bond styles:

zero
'''


def test_lmp_help_says_whether_a_build_runs_ace_and_where():
    from aiida_glassml.md import lammps_parsing

    build = lammps_parsing.parse_help(LMP_HELP)
    assert build.version == '4 Feb 2025' and build.packages == ['KOKKOS', 'KSPACE', 'ML-PACE']
    assert build.has_ace and build.has_ace_kokkos and build.kokkos_on_gpu
    assert 'zero' not in build.pair_styles
    assert build.describe() == ('LAMMPS 4 Feb 2025: ML-PACE (pace, pace/extrapolation), Kokkos CUDA/Serial '
                                '(pace/kk on GPU)')
    without = lammps_parsing.parse_help(LMP_HELP.replace('pace/extrapolation/kk', '').replace('pace', 'morse'))
    assert not without.has_ace and without.describe() == 'LAMMPS 4 Feb 2025: no ML-PACE'
