"""The ``aiida-glassml`` command line. Built on AiiDA's ``VerdiCommandGroup``, so ``-p PROFILE`` and ``-v`` work as in
``verdi``. Each area of the pipeline adds its subgroup in its own module, imported at the bottom."""

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import options, types


@click.group('aiida-glassml', cls=VerdiCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=types.ProfileParamType(load_profile=True), expose_value=False)
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
