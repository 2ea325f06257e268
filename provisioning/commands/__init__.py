"""One module per sub-command. Each defines::

    HELP: str                                    # one line for `provision.py --help`
    NEEDS_TENANT: bool                           # whether the command needs credentials / --sandbox
    def add_arguments(parser) -> None            # its own options
    def main(ctx: CommandContext, args) -> ExitStatus

``provision.py`` registers the modules listed in COMMANDS, in this order.
"""
from __future__ import annotations

COMMANDS: tuple[tuple[str, str], ...] = (
    # (command name, module under provisioning.commands)
    ("check", "check"),
    ("export-users", "export_users"),
    ("run", "run"),
    ("resume", "resume"),
    ("retry", "retry"),
    ("validate", "validate"),
    ("template", "template"),
    ("watch", "watch"),
)
