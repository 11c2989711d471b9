"""Light bookkeeping calcfunctions of the active-learning loop: summaries and figures whose inputs are the nodes they
summarise, so every number in an iteration report links back to the runs it came from. The decisions themselves are
in :mod:`aiida_glassml.fitting.active_learning`."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_glassml.fitting import active_learning as al


@calcfunction
def summarise_exploration(outcomes: orm.Dict, **results: orm.Dict) -> orm.Dict:
    """Counts of quiet / extrapolating / halted / crashed exploration runs, their candidate frames and the histogram
    of the highest gamma of each run. ``outcomes``: run label -> {outcome, exit_status, pk}; ``results``: the
    ``results`` Dict of every run that produced one (keyed by run label)."""
    outcomes = outcomes.get_dict()
    # the window of the selector: `_gamma_window`, or `_force_deviation_window` (σ_F,max of a committee, eV/Å)
    quantity = 'max_force_deviation' if '_force_deviation_window' in outcomes else 'max_gamma'
    lo, hi = outcomes.pop('_force_deviation_window' if quantity == 'max_force_deviation' else '_gamma_window')
    summary = al.exploration_summary([run['outcome'] for run in outcomes.values()])
    values = [results[label][quantity] for label in results if results[label].get(quantity) is not None]
    summary['n_candidates'] = int(sum(results[label].get('n_extrapolative_frames') or 0 for label in results))
    summary[f'{quantity}_histogram'] = al.gamma_histogram(values, lo, hi)
    summary['runs_by_label'] = outcomes
    return orm.Dict(summary)


@calcfunction
def stability_verdict(thermo: orm.ArrayData, results: orm.Dict, run: orm.Dict) -> dict:
    """Survived or not (and when) for the stability run of a fitted potential, and a PNG of energy against time."""
    from aiida_glassml.common.plotting import png_bytes, pyplot

    run = run.get_dict()
    results = results.get_dict()
    time = np.asarray(thermo.get_array('time'))
    energy = np.asarray(thermo.get_array('potential_energy'))
    halt_time = None
    if results.get('stop_reason') in ('gamma_halt', 'force_deviation_halt') and results.get('n_steps') is not None:
        halt_time = float(results['n_steps']) * float(run['timestep'])
    verdict = al.stability_verdict(time, energy, run['n_atoms'], results.get('stop_reason'), run.get('exit_status'),
                                   halt_time)  # fmt: skip
    verdict.update({'temperature': run['temperature'], 'planned_ps': run['planned_ps'], 'n_atoms': run['n_atoms']})

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(time, energy / max(run['n_atoms'], 1), lw=1.2)
    if not verdict['survived']:
        ax.axvline(verdict['failed_at_ps'], color='tab:red', ls='--', label=f'failed: {verdict["reason"]}')
        ax.legend(fontsize=7, loc='best')
    ax.set_xlabel('time (ps)')
    ax.set_ylabel('potential energy (eV/atom)')
    state = 'survived' if verdict['survived'] else f'failed at {verdict["failed_at_ps"]:.3f} ps'
    ax.set_title(f'NVT {run["temperature"]:.0f} K, {run["n_atoms"]} atoms: {state}', fontsize=9)
    png = png_bytes(fig)
    return {'verdict': orm.Dict(verdict), 'figure': orm.SinglefileData(io.BytesIO(png), filename='stability.png')}


@calcfunction
def iteration_report(**parts: orm.Dict) -> orm.Dict:
    """One Dict per iteration from its parts (exploration summary, selection, labelling report, fit and test metrics,
    stability verdict, timings); each part is an input, so the report links to what it reports."""
    values = {key: part.get_dict() for key, part in parts.items()}
    header = values.pop('header')
    exploration = values.get('exploration', {})
    selection = values.get('selection', {})
    labelling = values.get('labelling', {})
    fit = values.get('fit_metrics', {})
    test = values.get('test_metrics', {})
    stability = values.get('stability', {})
    report = {
        **header,
        **{key: exploration.get(key) for key in ('runs', 'quiet', 'extrapolating', 'halted', 'crashed',
                                                  'quiet_fraction', 'n_candidates')},
        'max_gamma_histogram': exploration.get('max_gamma_histogram'),
        **({'max_force_deviation_histogram': exploration['max_force_deviation_histogram']}
           if 'max_force_deviation_histogram' in exploration else {}),
        'n_selected': selection.get('n_selected'),
        'n_labelled': labelling.get('n_frames'),
        'labelling_failures': len(labelling.get('failed', [])) if labelling else None,
        'train_force_rmse': fit.get('train_force_rmse'), 'train_energy_rmse': fit.get('train_energy_rmse'),
        'train_force_mae': fit.get('train_force_mae'), 'train_energy_mae': fit.get('train_energy_mae'),
        'test_force_rmse': test.get('force_rmse'), 'test_energy_rmse': test.get('energy_rmse'),
        'test_force_mae': test.get('force_mae'), 'test_energy_mae': test.get('energy_mae'),
        'stable': stability.get('survived'), 'stability': stability or None,
        'timings': values.get('timings'),
    }  # fmt: skip
    return orm.Dict(report)


@calcfunction
def loop_report(stop: orm.Dict, **reports: orm.Dict) -> dict:
    """The table of all iterations (``reports`` keyed ``iteration_NN``) with the ``stop`` record, and a PNG across
    iterations: candidates and selected frames, dataset size, train/test force RMSE and the share of quiet runs."""
    from aiida_glassml.common.plotting import png_bytes, pyplot

    rows = [reports[key].get_dict() for key in sorted(reports)]
    table = al.iteration_table(rows)
    its = [row['iteration'] for row in rows]

    def column(name):
        return [np.nan if row.get(name) is None else float(row[name]) for row in rows]

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), dpi=120)
    axes[0].plot(its, column('n_candidates'), 'o-', label='candidates')
    axes[0].plot(its, column('n_selected'), 's-', label='selected')
    axes[0].plot(its, column('dataset_frames'), '^-', label='dataset frames')
    axes[0].set_ylabel('frames')
    axes[0].legend(fontsize=7)
    axes[1].plot(its, column('train_force_rmse'), 'o-', label='train')
    axes[1].plot(its, column('test_force_rmse'), 's-', label='test')
    axes[1].set_ylabel('force RMSE (meV/Å)')
    axes[1].legend(fontsize=7)
    axes[2].plot(its, column('quiet_fraction'), 'o-')
    axes[2].set_ylim(-0.05, 1.05)
    committee = any(row.get('selector') == 'force_deviation' for row in rows)
    axes[2].set_ylabel('runs below sigma_lo' if committee else 'runs below gamma_lo')
    for ax in axes:
        ax.set_xlabel('iteration')
    png = png_bytes(fig)
    return {'table': orm.Dict({'rows': rows, 'text': table, 'stop': stop.get_dict()}),
            'figure': orm.SinglefileData(io.BytesIO(png), filename='active_learning.png')}  # fmt: skip
