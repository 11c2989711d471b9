"""``LammpsMDBaseWorkChain``: run ``LammpsMDCalculation`` and recover from the failures a retry can fix."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from aiida_glassml.md import outputs
from aiida_glassml.md.protocol import MDProtocol

LammpsMDCalculation = CalculationFactory('glassml.lammps_md')

#: smallest timestep (ps) a lost-atoms restart may go down to
MIN_TIMESTEP_PS = 0.000125


class LammpsMDBaseWorkChain(BaseRestartWorkChain):
    """Restart LAMMPS MD with a halved timestep after lost atoms or out-of-range atoms, and with a larger neighbour
    skin after a neighbour-list overflow. A gamma halt is passed through with its outputs (exit 350)."""

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
        spec.exit_code(401, 'ERROR_TIMESTEP_TOO_SMALL',
                       message='atoms were still lost at the smallest allowed timestep {timestep} ps.')

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
        """A neighbour-list overflow usually means atoms crowding after a bad step: same fix, smaller timestep."""
        return self.handle_lost_atoms(calculation)

    @process_handler(priority=400, exit_codes=[
        LammpsMDCalculation.exit_codes.ERROR_GAMMA_HALT,  # pylint: disable=no-member
    ])  # fmt: skip
    def handle_gamma_halt(self, calculation):
        """Rerunning cannot help: attach the outputs up to the halt and stop with 350."""
        self.out_many(self.exposed_outputs(calculation, LammpsMDCalculation))
        self.report(f'{calculation.process_label}<{calculation.pk}> halted on gamma: '
                    f'{calculation.outputs.results.get("message")}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_GAMMA_HALT)


__all__ = ('LammpsMDBaseWorkChain', 'outputs')
