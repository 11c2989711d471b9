"""`make demo`: the largest real end-to-end slice of the pipeline that runs on this machine.

Prints what it did and where the results are (node PKs, files)."""

import pathlib
import sys

from aiida import load_profile

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / 'tests' / 'data'
OUT = ROOT / 'demo_output'


def main() -> int:
    load_profile()
    from aiida_glassml.calcfunctions.training_set import merge_training_sets
    from aiida_glassml.common.frames import FrameSet
    from aiida_glassml.data import AcePotentialData, TrainingSetData

    OUT.mkdir(exist_ok=True)
    print('1. Import the published NaFePO4 ACE potential (stored once, by hash)')
    potential = AcePotentialData.get_or_create(DATA / 'output_potential.yaml', yace=DATA / 'output_potential.yace')
    print(f'   AcePotentialData<{potential.pk}> elements={potential.elements} cutoff={potential.cutoff} Å')

    print('2. Import the published held-out DFT test set')
    frames = FrameSet.read_pacemaker_pickle(DATA / 'test_data.pckl.gzip')
    first = TrainingSetData(frames.select(range(0, 218)), label='nafepo4-test-a').store()
    second = TrainingSetData(frames.select(range(200, 436)), label='nafepo4-test-b').store()
    merged = merge_training_sets(a=first, b=second)
    print(f'   merged TrainingSetData<{merged["training_set"].pk}>: {merged["training_set"].n_frames} frames '
          f'({merged["report"]["n_duplicates_dropped"]} duplicates dropped)')
    path = OUT / 'nafepo4_test.extxyz'
    merged['training_set'].export(path)
    print(f'   exported to {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
