"""``tad backbones [NAME]``: the table of registered backbones, or one backbone in detail."""
from __future__ import annotations

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command("backbones", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Print the table as Markdown with one THUMOS14 extraction line each "
                                                "(the README's backbone section).")
def backbones(name: str | None, markdown: bool) -> None:
    """List the registered backbones: paper, input (frames x sampling interval @ crop),
    normalisation, feature dimension, GFLOPs per clip, the official checkpoint files
    they load and where those are published, and their continual/online modes.

    With NAME, show that backbone's card and the pre-processing defaults that
    `tad extract --backbone NAME` uses.

    \b
    Examples:
      tad backbones
      tad backbones r2plus1d_18
      tad backbones --markdown > backbones.md
    """
    from tad.features.backbone_table import backbone_details, format_markdown, format_table

    try:
        if name is None:
            click.echo(format_markdown() if markdown else format_table())
        else:
            click.echo(backbone_details(name))
    except TadInputError as exc:
        fail(exc)
