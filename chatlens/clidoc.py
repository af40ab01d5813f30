"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``."""

from __future__ import annotations

import click


def cli_reference() -> str:
    from chatlens.cli import cli

    parts = ["# CLI reference", "",
             "Generated from `chatlens --help`; regenerate with "
             "`python -m chatlens.clidoc > docs/cli.md`.", ""]
    # the group's context_settings (``-h``) as a real invocation has them: click caches each
    # command's help option, so the text must not depend on whether the CLI ran in-process
    ctx = click.Context(cli, info_name="chatlens", terminal_width=100, max_content_width=100,
                        **cli.context_settings)
    parts += ["```", cli.get_help(ctx), "```", ""]
    for name in sorted(cli.list_commands(ctx)):
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        sub = click.Context(cmd, info_name=name, parent=ctx, terminal_width=100,
                            max_content_width=100)
        parts += [f"## chatlens {name}", "", "```", cmd.get_help(sub), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(cli_reference(), end="")
