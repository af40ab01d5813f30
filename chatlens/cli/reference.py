"""The CLI reference (docs/cli.md), generated from the ``--help`` of every command and
subcommand."""

from __future__ import annotations

import click


def cli_reference() -> str:
    from chatlens.cli import cli

    parts = ["# CLI reference", "",
             "Generated from `chatlens --help`; regenerate with "
             "`python -m chatlens.cli.reference > docs/cli.md`.", ""]
    # the group's context_settings (``-h``) as a real invocation has them: click caches each
    # command's help option, so the text must not depend on whether the CLI ran in-process
    ctx = click.Context(cli, info_name="chatlens", terminal_width=100, max_content_width=100,
                        **cli.context_settings)
    parts += ["```", cli.get_help(ctx), "```", ""]
    def walk(group: click.Group, parent: click.Context, path: str) -> None:
        for name in sorted(group.list_commands(parent)):
            cmd = group.get_command(parent, name)
            assert cmd is not None
            sub = click.Context(cmd, info_name=name, parent=parent, terminal_width=100,
                                max_content_width=100)
            parts.extend([f"## {path} {name}", "", "```", cmd.get_help(sub), "```", ""])
            if isinstance(cmd, click.Group):
                walk(cmd, sub, f"{path} {name}")

    walk(cli, ctx, "chatlens")
    return "\n".join(parts)


if __name__ == "__main__":
    print(cli_reference(), end="")
