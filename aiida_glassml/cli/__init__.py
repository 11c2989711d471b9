"""The ``aiida-glassml`` command line. Built on AiiDA's ``VerdiCommandGroup``, so ``-p PROFILE`` and ``-v LEVEL``
work as in ``verdi``, before the subcommand (``aiida-glassml -v debug analyse ...``) or after it. Each area of the
pipeline adds its subgroup in its own module, imported at the bottom."""

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import options, types


def _set_verbosity(ctx, param, value):
    """aiida's ``set_log_level`` keeps the first call for good, and every group level calls it (``None`` when not
    given), so ``aiida-glassml analyse structure -v debug`` was silently ignored. Here a given level always applies
    (the innermost wins); an absent one only sets up logging once."""
    from aiida.cmdline.params.options.main import set_log_level
    from aiida.common import log

    if value is None and log.CLI_ACTIVE:
        return None
    if value is not None:
        log.CLI_ACTIVE = False
    return set_log_level(ctx, param, value)


VERBOSITY = options.VERBOSITY(callback=_set_verbosity)


class GlassmlCommandGroup(VerdiCommandGroup):
    """``VerdiCommandGroup`` whose ``-v LEVEL`` works at every level, also before the subcommand as in ``verdi``."""

    @staticmethod
    def add_verbosity_option(cmd: click.Command) -> click.Command:
        if 'verbosity' not in [param.name for param in cmd.params]:
            cmd = VERBOSITY(cmd)
        return cmd


@click.group('aiida-glassml', cls=GlassmlCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=types.ProfileParamType(load_profile=True), expose_value=False)
@VERBOSITY
def cli():
    """aiida-glassml: ACE potentials for glassy battery materials, with provenance."""


# Subcommands register themselves on ``cli`` when imported.
from . import cmd_data, cmd_setup  # noqa: E402,F401
from . import cmd_analyse  # noqa: E402,F401
from . import cmd_structures  # noqa: E402,F401
from . import cmd_potential  # noqa: E402,F401
from . import cmd_analyse_trajectory  # noqa: E402,F401
from . import cmd_active_learning  # noqa: E402,F401
from . import cmd_trace  # noqa: E402,F401
from . import cmd_study  # noqa: E402,F401
from . import cmd_maintenance  # noqa: E402,F401
