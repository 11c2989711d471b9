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


#: ``ctx.meta`` key of a ``-p NAME`` that is no profile yet: (name, the error any other subcommand gives)
NEW_PROFILE = 'aiida_glassml.new_profile'
#: the subcommand that creates the profile ``-p`` names
CREATES_PROFILE = 'setup'


class RootProfileParamType(types.ProfileParamType):
    """``-p NAME`` of the root group: an existing profile is loaded as in ``verdi``; a name that is no profile yet is
    kept for ``setup``, which creates it. The root runs before its subcommand is known, so :func:`cli` refuses the
    name for any other subcommand."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            config = getattr(ctx.obj, 'config', None)
            if ctx is None or config is None or not isinstance(value, str) or value in config.profile_names:
                raise
            exc.param, exc.ctx = exc.param or param, exc.ctx or ctx  # the message names `-p` as before
            ctx.meta[NEW_PROFILE] = (value, exc)
            return None


@click.group('aiida-glassml', cls=GlassmlCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=RootProfileParamType(load_profile=True), expose_value=False)
@VERBOSITY
@click.pass_context
def cli(ctx):
    """aiida-glassml: ACE potentials for glassy battery materials, with provenance."""
    new_profile = ctx.meta.get(NEW_PROFILE)
    if new_profile is not None and ctx.invoked_subcommand != CREATES_PROFILE:
        raise new_profile[1]


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
