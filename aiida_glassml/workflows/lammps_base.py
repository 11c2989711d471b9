"""``LammpsMDBaseWorkChain``: run ``LammpsMDCalculation`` and recover from the failures a retry can fix."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from aiida_glassml.md import lammps as render
from aiida_glassml.md.protocol import MDProtocol

LammpsMDCalculation = CalculationFactory('glassml.lammps_md')

#: smallest timestep (ps) a lost-atoms restart may go down to
MIN_TIMESTEP_PS = 0.000125
#: largest ``neigh_modify one`` a neighbour-overflow restart may go up to (16 × LAMMPS's default 2000)
MAX_NEIGH_ONE = 32000
#: sbatch's "Invalid account or account/partition combination specified" (aiida: exit 131), said in one line
INVALID_ACCOUNT_MESSAGE = ('the scheduler refused the job: account {account} does not exist or may not use '
                           'partition {queue}; set the `account` option to one of yours (Slurm: `sacctmgr show assoc '
                           'user=$USER`).')


def invalid_account_exit_code(exit_codes, calculation):
    """The work chain's ERROR_SCHEDULER_INVALID_ACCOUNT naming the account and partition ``calculation`` asked for."""
    return exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT.format(
        account=repr(calculation.get_option('account')), queue=repr(calculation.get_option('queue_name') or 'default'))


class LammpsMDBaseWorkChain(BaseRestartWorkChain):
    """Restart LAMMPS MD with a halved timestep after lost atoms or out-of-range atoms, and with doubled
    neighbour-list limits (settings ``neigh_one``/``neigh_page``, LAMMPS ``neigh_modify one/page``) after a
    neighbour-list overflow. A gamma halt is passed through with its outputs (exit 350), and so is a run the
    scheduler stopped at its walltime (exit 360: the input writes no restart files, and a rerun with the same walltime
    would stop at the same place)."""

    _process_class = LammpsMDCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(LammpsMDCalculation, namespace='md')
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.expose_outputs(LammpsMDCalculation)
        spec.exit_code(350, 'ERROR_GAMMA_HALT', message='the MD stopped on the ACE extrapolation grade (gamma_hi).')
        spec.exit_code(310, 'ERROR_TIMESTEP_TOO_SMALL',
                       message='atoms were still lost at the smallest allowed timestep {timestep} ps.')
        spec.exit_code(311, 'ERROR_NEIGHBOR_LIST_TOO_LARGE',
                       message='the neighbour list still overflowed with neigh_modify one {one}; the structure is '
                               'probably collapsing (check the potential and the starting density).')
        spec.exit_code(360, 'ERROR_OUT_OF_WALLTIME',
                       message='the scheduler stopped the MD at its walltime of {seconds} s after {steps} of {total} '
                               'steps (outputs so far attached): raise `max_wallclock_seconds` or shorten the '
                               'protocol.')
        spec.exit_code(361, 'ERROR_SCHEDULER_INVALID_ACCOUNT', message=INVALID_ACCOUNT_MESSAGE)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LammpsMDCalculation, 'md'))

    @process_handler(priority=600, exit_codes=[
        LammpsMDCalculation.exit_codes.ERROR_LOST_ATOMS,  # pylint: disable=no-member
        LammpsMDCalculation.exit_codes.ERROR_OUT_OF_RANGE_ATOMS,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_lost_atoms(self, calculation):
        """Halve the timestep (all stage times stay in ps, so the step counts double) and run again."""
        protocol = MDProtocol.from_dict(self.ctx.inputs.protocol.get_dict())
        new_timestep = protocol.timestep / 2
        if new_timestep < MIN_TIMESTEP_PS:
            self.report(f'{calculation.process_label}<{calculation.pk}> lost atoms at timestep {protocol.timestep} ps; '
                        'not going lower')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_TIMESTEP_TOO_SMALL.format(
                timestep=protocol.timestep))
        protocol.timestep = new_timestep
        self.ctx.inputs.protocol = orm.Dict(protocol.validate().to_dict())
        self.report(f'{calculation.process_label}<{calculation.pk}> lost atoms: timestep halved to {new_timestep} ps')
        return ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[
        LammpsMDCalculation.exit_codes.ERROR_NEIGHBOR_LIST_OVERFLOW,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_neighbor_overflow(self, calculation):
        """Too many neighbours per atom for LAMMPS's list pages: double ``neigh_modify one`` (and ``page`` with it)
        and run again, up to :data:`MAX_NEIGH_ONE`."""
        settings = self.ctx.inputs.settings.get_dict() if 'settings' in self.ctx.inputs else {}
        one = int(settings.get('neigh_one') or render.NEIGH_ONE_DEFAULT)
        new_one = 2 * one
        if new_one > MAX_NEIGH_ONE:
            self.report(f'{calculation.process_label}<{calculation.pk}> neighbour list overflowed at neigh_modify one '
                        f'{one}; not going higher')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_NEIGHBOR_LIST_TOO_LARGE.format(one=one))
        page = int(settings.get('neigh_page') or render.NEIGH_PAGE_DEFAULT)
        settings.update(neigh_one=new_one, neigh_page=max(2 * page, 10 * new_one))
        self.ctx.inputs.settings = orm.Dict(settings)
        self.report(f'{calculation.process_label}<{calculation.pk}> neighbour list overflow: neigh_modify one '
                    f'{new_one} page {settings["neigh_page"]}')
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[
        LammpsMDCalculation.exit_codes.ERROR_GAMMA_HALT,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_gamma_halt(self, calculation):
        """Rerunning cannot help: attach the outputs up to the halt and stop with 350."""
        self.out_many(self.exposed_outputs(calculation, LammpsMDCalculation))
        self.report(f'{calculation.process_label}<{calculation.pk}> halted on gamma: '
                    f'{calculation.outputs.results.get("message")}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_GAMMA_HALT)

    @process_handler(priority=390, exit_codes=[
        LammpsMDCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_out_of_walltime(self, calculation):
        """Stopped by the scheduler at its walltime: attach what the run wrote (thermo, frames up to the stop) and
        exit 360 naming the walltime and the steps done."""
        self.out_many(self.exposed_outputs(calculation, LammpsMDCalculation))
        results = calculation.outputs.results.get_dict() if 'results' in calculation.outputs else {}
        exit_code = self.exit_codes.ERROR_OUT_OF_WALLTIME.format(
            seconds=calculation.get_option('max_wallclock_seconds'), steps=results.get('n_steps', '?'),
            total=results.get('n_steps_requested', '?'))
        self.report(f'{calculation.process_label}<{calculation.pk}>: {exit_code.message}')
        return ProcessHandlerReport(True, exit_code)

    @process_handler(priority=380, exit_codes=[
        LammpsMDCalculation.exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_invalid_account(self, calculation):
        """sbatch refused the account: a rerun would be refused too."""
        exit_code = invalid_account_exit_code(self.exit_codes, calculation)
        self.report(f'{calculation.process_label}<{calculation.pk}>: {exit_code.message}')
        return ProcessHandlerReport(True, exit_code)


__all__ = ('LammpsMDBaseWorkChain',)
