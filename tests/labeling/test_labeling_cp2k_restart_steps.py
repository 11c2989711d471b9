"""A continued CP2K MD ends at the step the labelling asked for: real CP2K, an MD of a water molecule cut after 3
of 5 steps, then continued from its restart file with EXT_RESTART + RESTART_COUNTERS (as ``LabelCp2kBaseWorkChain``
restarts) and ``MD/STEPS`` from :func:`remaining_md_steps`. CP2K counts STEPS from the restart's step, so the old
handler (STEPS unchanged) ran steps 4 to 8."""

from __future__ import annotations

import os
import subprocess

import pytest

from aiida_glassml.labeling.cp2k import last_md_step, remaining_md_steps

INPUT = """\
{restart}&GLOBAL
  PROJECT {project}
  RUN_TYPE MD
  PRINT_LEVEL LOW
&END GLOBAL
&MOTION
  &MD
    ENSEMBLE NVE
    STEPS {steps}
    TIMESTEP 0.5
    TEMPERATURE 300
  &END MD
  &PRINT
    &RESTART
      BACKUP_COPIES 0
      &EACH
        MD 1
      &END EACH
    &END RESTART
  &END PRINT
&END MOTION
&FORCE_EVAL
  METHOD QS
  &DFT
    BASIS_SET_FILE_NAME BASIS_MOLOPT
    POTENTIAL_FILE_NAME GTH_POTENTIALS
    &MGRID
      CUTOFF 150
    &END MGRID
    &SCF
      EPS_SCF 1e-5
    &END SCF
    &XC
      &XC_FUNCTIONAL PBE
      &END XC_FUNCTIONAL
    &END XC
  &END DFT
  &SUBSYS
    &CELL
      ABC 5 5 5
    &END CELL
    &COORD
      O 2.5 2.5 2.5
      H 3.26 3.09 2.5
      H 1.74 3.09 2.5
    &END COORD
    &KIND H
      BASIS_SET SZV-MOLOPT-SR-GTH
      POTENTIAL GTH-PBE-q1
    &END KIND
    &KIND O
      BASIS_SET SZV-MOLOPT-SR-GTH
      POTENTIAL GTH-PBE-q6
    &END KIND
  &END SUBSYS
&END FORCE_EVAL
"""
RESTART = """&EXT_RESTART
  RESTART_FILE_NAME first-1.restart
  RESTART_DEFAULT T
  RESTART_COUNTERS T
  RESTART_POS T
  RESTART_VEL T
  RESTART_THERMOSTAT T
&END EXT_RESTART
"""
TOTAL = 5


def _run(executable: str, folder, name: str, text: str) -> str:
    (folder / f'{name}.inp').write_text(text)
    result = subprocess.run([executable, '-i', f'{name}.inp'], cwd=folder, capture_output=True, text=True,
                            timeout=600, env={**os.environ, 'OMP_NUM_THREADS': '1'})  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_continued_md_ends_at_the_requested_step(installed_code, tmp_path):
    executable = str(installed_code('cp2k', 'cp2k').get_executable())
    first = _run(executable, tmp_path, 'first', INPUT.format(restart='', project='first', steps=3))  # cut at 3 of 5
    assert last_md_step(first) == 3
    steps = remaining_md_steps(TOTAL, first)
    assert steps == 2
    second = _run(executable, tmp_path, 'second', INPUT.format(restart=RESTART, project='second', steps=steps))
    assert last_md_step(second) == TOTAL
    assert second.count(' MD| Step number') == 2  # steps 4 and 5, nothing run twice


@pytest.mark.parametrize(('stdout', 'expected'), [
    ('', 5), (' MD| Step number      3\n', 2), (' MD| Step number   4\n MD| Step number   5\n', 1),
])  # fmt: skip
def test_remaining_steps_from_the_last_printed_step(stdout, expected):
    assert remaining_md_steps(TOTAL, stdout) == expected
