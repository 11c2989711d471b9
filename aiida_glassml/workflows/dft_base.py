"""Base work chains of the DFT plugins with the handlers that labelling of hot, disordered structures needs.

The plugins' own handlers stay active; these add:

- SCF not converged: change mixing and smearing, then restart from the last wavefunction;
- out of walltime: restart (MD continues from its last step);
- MD stopped early (output incomplete): restart from the last MD step. The frames the stopped run wrote are kept:
  ``LabelWorkChain`` reads every CalcJob of the base work chain, failed ones included.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ExitCode, ProcessHandlerReport, process_handler
from aiida.plugins import CalculationFactory, WorkflowFactory

from aiida_glassml.labeling import cp2k as cp2k_labeling
from aiida_glassml.workflows.lammps_base import INVALID_ACCOUNT_MESSAGE, invalid_account_exit_code

#: CP2K's MOTION/MD/STEPS when the input leaves it out
CP2K_DEFAULT_MD_STEPS = 3

Cp2kCalculation = CalculationFactory('cp2k')
Cp2kBaseWorkChain = WorkflowFactory('cp2k.base')
PwCalculation = CalculationFactory('quantumespresso.pw')
PwBaseWorkChain = WorkflowFactory('quantumespresso.pw.base')


def _cp2k_stdout(calc) -> str:
    try:
        return calc.outputs.retrieved.base.repository.get_object_content(cp2k_labeling.OUTPUT_FILE)
    except Exception:  # noqa: BLE001 - no retrieved folder or no output file: nothing to restart from
        return ''


class LabelCp2kBaseWorkChain(Cp2kBaseWorkChain):
    """``Cp2kBaseWorkChain`` with restarts for unconverged SCF, walltime and MD runs that stopped early."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        # 3xx: terminal (401 is BaseRestartWorkChain's ERROR_MAXIMUM_ITERATIONS_EXCEEDED; 300/310 are aiida-cp2k's).
        spec.exit_code(320, 'ERROR_SCF_NOT_CONVERGED_AFTER_ROBUST_SETTINGS',
                       message='The SCF did not converge even with diagonalisation, smearing and reduced mixing.')  # fmt: skip
        spec.exit_code(330, 'ERROR_SCHEDULER_INVALID_ACCOUNT', message=INVALID_ACCOUNT_MESSAGE)

    def _restart_from(self, calc, parameters: dict, stdout: str) -> None:
        """Restart from ``calc``'s folder: its wavefunction if it wrote one, its MD state if it made MD steps."""
        import copy

        parameters = copy.deepcopy(parameters)
        if 'Total energy:' in stdout or 'SCF WAVEFUNCTION OPTIMIZATION' in stdout:
            dft = parameters['FORCE_EVAL']['DFT']
            dft['RESTART_FILE_NAME'] = './parent_calc/aiida-RESTART.wfn'
            dft['SCF']['SCF_GUESS'] = 'RESTART'
        if parameters.get('GLOBAL', {}).get('RUN_TYPE') == 'MD' and 'MD| Step number' in stdout:
            parameters['EXT_RESTART'] = {
                'RESTART_FILE_NAME': './parent_calc/aiida-1.restart', 'RESTART_DEFAULT': True,
                'RESTART_COUNTERS': True, 'RESTART_POS': True, 'RESTART_VEL': True, 'RESTART_THERMOSTAT': True,
            }  # fmt: skip
            # the MD asked for, kept across restarts: the continuation runs only what is left of it
            md = parameters.setdefault('MOTION', {}).setdefault('MD', {})
            if 'md_total_steps' not in self.ctx:
                self.ctx.md_total_steps = int(md.get('STEPS', CP2K_DEFAULT_MD_STEPS))
            md['STEPS'] = cp2k_labeling.remaining_md_steps(self.ctx.md_total_steps, stdout)
        self.ctx.inputs.parameters = orm.Dict(parameters)
        self.ctx.inputs.parent_calc_folder = calc.outputs.remote_folder

    @process_handler(priority=480, exit_codes=[Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED])
    def handle_scf_not_converged(self, calc):
        """Switch OT to diagonalisation with Broyden mixing and Fermi-Dirac smearing (or halve the mixing and double
        the smearing if already there), then restart from the last wavefunction."""
        parameters = self.ctx.inputs.parameters.get_dict()
        scf = parameters['FORCE_EVAL']['DFT']['SCF']
        if 'OT' not in scf and float(scf.get('MIXING', {}).get('ALPHA', 0.2)) < 0.02:
            self.report(f'{calc.process_label}<{calc.pk}>: SCF not converged with mixing alpha < 0.02; giving up.')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_SCF_NOT_CONVERGED_AFTER_ROBUST_SETTINGS)
        robust = cp2k_labeling.with_robust_scf(parameters)
        self._restart_from(calc, robust, _cp2k_stdout(calc))
        new_scf = robust['FORCE_EVAL']['DFT']['SCF']
        self.report(
            f'{calc.process_label}<{calc.pk}>: SCF not converged; restarting from the last wavefunction with '
            f'{new_scf["MIXING"]["METHOD"]} alpha={new_scf["MIXING"]["ALPHA"]:g} and Fermi-Dirac smearing at '
            f'{new_scf["SMEAR"]["ELECTRONIC_TEMPERATURE"]:g} K.'
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=470, exit_codes=[Cp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, calc):
        """CP2K stopped cleanly at its walltime: restart from its wavefunction and MD state."""
        self._restart_from(calc, self.ctx.inputs.parameters.get_dict(), _cp2k_stdout(calc))
        self.report(f'{calc.process_label}<{calc.pk}>: out of walltime; restarting from where it stopped.')
        return ProcessHandlerReport(True)

    @process_handler(priority=460, exit_codes=[Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE])
    def handle_md_stopped_early(self, calc):
        """The run was cut off (killed, node failure). Its frames are kept by the labelling work chain; continue the MD
        from its last restart file, or stop if it wrote none."""
        stdout = _cp2k_stdout(calc)
        if 'MD| Step number' not in stdout and 'Total energy:' not in stdout:
            self.report(f'{calc.process_label}<{calc.pk}>: stopped before any SCF finished; nothing to restart from.')
            return ProcessHandlerReport(True, self.exit_codes.NO_RESTART_DATA)
        self._restart_from(calc, self.ctx.inputs.parameters.get_dict(), stdout)
        self.report(f'{calc.process_label}<{calc.pk}>: output incomplete; keeping its frames and continuing.')
        return ProcessHandlerReport(True)

    @process_handler(priority=490, exit_codes=[Cp2kCalculation.exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT])
    def handle_invalid_account(self, calc):
        """sbatch refused the account: a rerun would be refused too."""
        exit_code = invalid_account_exit_code(self.exit_codes, calc)
        self.report(f'{calc.process_label}<{calc.pk}>: {exit_code.message}')
        return ProcessHandlerReport(True, exit_code)


class LabelPwBaseWorkChain(PwBaseWorkChain):
    """``PwBaseWorkChain`` whose SCF handler also switches fixed occupations to smearing and restarts from the last
    wavefunctions (the plugin's own handler only lowers ``mixing_beta`` and restarts in full), and which catches MD
    runs that pw.x ended after an unconverged SCF although the plugin reports them as finished (exit status 0)."""

    def _robust_scf(self) -> str:
        """Lower the mixing (local-TF) and smear the occupations (or double the smearing); return what changed."""
        parameters = self.ctx.inputs.parameters
        system, electrons = parameters.setdefault('SYSTEM', {}), parameters.setdefault('ELECTRONS', {})
        beta = float(electrons.get('mixing_beta', self.defaults.qe.mixing_beta))
        electrons['mixing_beta'] = beta * self.defaults.delta_factor_mixing_beta
        electrons['mixing_mode'] = 'local-TF'
        if system.get('occupations', 'fixed') == 'fixed':
            system.update({'occupations': 'smearing', 'smearing': 'gaussian', 'degauss': 0.01})
            system.pop('nbnd', None)
        else:
            system['degauss'] = float(system.get('degauss', 0.01)) * 2
        return (
            f'mixing_beta {beta:g} -> {electrons["mixing_beta"]:g} (local-TF), {system.get("smearing")} smearing '
            f'degauss={system["degauss"]:g} Ry'
        )

    def _continue_md_from(self, calculation) -> None:
        """An MD restarts from the last positions of ``calculation``, not from its start structure: the labelling work
        chain numbers the frames of the restarted run after those of the stopped one."""
        if self.ctx.inputs.parameters.get('CONTROL', {}).get('calculation') == 'md':
            if 'output_structure' in calculation.outputs:
                self.ctx.inputs.structure = calculation.outputs.output_structure

    @process_handler(priority=415, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED])
    def handle_scf_not_converged_smearing(self, calculation):
        from aiida_quantumespresso.workflows.pw.base import RestartType

        action = self._robust_scf()
        self._continue_md_from(calculation)
        self.set_restart_type(RestartType.FROM_WAVE_FUNCTIONS, calculation.outputs.remote_folder)
        self.report_error_handled(calculation, f'{action}; restarting from the last wavefunctions')
        return ProcessHandlerReport(True)

    @process_handler(priority=5, exit_codes=ExitCode(0))
    def sanity_check_md_scf_converged(self, calculation):
        """pw.x stops an MD at an unconverged SCF and the plugin still reports success: restart the MD with robust
        SCF settings. Frames of the steps it did finish are kept by the labelling work chain."""
        from aiida_quantumespresso.workflows.pw.base import RestartType

        if self.ctx.inputs.parameters.get('CONTROL', {}).get('calculation') != 'md':
            return None
        parameters = calculation.outputs.output_parameters.get_dict() if 'output_parameters' in calculation.outputs else {}
        converged = parameters.get('convergence_info', {}).get('scf_conv', {}).get('convergence_achieved', True)
        if converged:
            return None
        action = self._robust_scf()
        self._continue_md_from(calculation)
        self.set_restart_type(RestartType.FROM_SCRATCH)
        self.report_error_handled(
            calculation, f'MD stopped at an unconverged SCF; {action}; continuing the MD from its last positions'
        )
        return ProcessHandlerReport(True)
