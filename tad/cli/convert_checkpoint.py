"""``tad convert-checkpoint FAMILY SRC DST``: released checkpoints in a non-PyTorch format (scenic's
Flax ViViT and MTV) -> a ``.pth`` the backbone loads strictly (thin layer over
``tad.features.backbones.convert_vivit`` / ``convert_mtv``)."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError

FAMILIES = ("vivit", "mtv")


@click.command(
    "convert-checkpoint",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  # scenic's ViViT-B/16x2 (model 1) Kinetics-400 checkpoint -> .pth, then extract
  tad convert-checkpoint vivit vivit_base_16x2_unfactorized/checkpoint vivit_b16x2_k400.pth
  tad extract videos/ -o f.h5 --backbone vivit_b16x2_k400 --checkpoint vivit_b16x2_k400.pth
  # scenic's MTV-B Kinetics-400 checkpoint (cross-view attention) -> .pth
  tad convert-checkpoint mtv mtv_b_k400/checkpoint mtv_b_k400.pth

\b
vivit: scenic's Flax checkpoints (msgpack, read without JAX): model 1 (unfactorised) and
model 2 (factorised encoder); SRC may be the checkpoint file or its directory
(the checkpoint_<step> with the highest step). The classifier head is dropped.
mtv: scenic's MTV Flax checkpoints (cross-view attention: MTV-B, MTV-L).""",
)
@click.argument("family", type=click.Choice(FAMILIES))
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backbone", default=None, help="Registered backbone to check the weights against "
                                                 "(default: the release the shapes match).")
@click.option("--num-frames", type=int, default=None,
              help="ViViT model 1 only: frames per clip its position table was trained for (release: 32).")
@click.option("--img-size", type=int, default=None,
              help="ViViT model 1 only: input side its position table was trained for (release: 224).")
def convert_checkpoint(family: str, src: Path, dst: Path, backbone: str | None, num_frames: int | None,
                       img_size: int | None) -> None:
    """Convert a released FAMILY checkpoint SRC to a PyTorch file DST.

    The weights are checked key by key and shape by shape against the backbone before DST
    is written; DST holds only tensors (it loads with torch.load(weights_only=True)).
    """
    from tad.output_guard import refuse_output_over_inputs

    try:
        for flag, value in (("--num-frames", num_frames), ("--img-size", img_size)):
            if value is not None and value < 1:
                raise TadInputError(flag, f"must be >= 1, got {value}")
        refuse_output_over_inputs({"DST": dst}, {"SRC": src})
        if family == "mtv":
            for flag, value in (("--num-frames", num_frames), ("--img-size", img_size)):
                if value is not None:
                    raise TadInputError(flag, "ViViT model 1 only (MTV's tables give its clip size)")
            from tad.features.backbones.convert_mtv import convert_mtv_checkpoint

            meta = convert_mtv_checkpoint(src, dst, backbone=backbone)
        else:
            from tad.features.backbones.convert_vivit import convert_vivit_checkpoint

            meta = convert_vivit_checkpoint(src, dst, backbone=backbone, num_frames=num_frames, img_size=img_size)
    except TadInputError as exc:
        fail(exc)
    options = " ".join(f"--backbone-option {k}={v}" for k, v in meta["options"].items())
    click.echo(f"wrote {dst} (backbone {meta['backbone']})")
    click.echo(f"use: tad extract VIDEOS -o FEATURES.h5 --backbone {meta['backbone']} --checkpoint {dst}"
               + (f" {options}" if options else ""))
