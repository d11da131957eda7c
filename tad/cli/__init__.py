"""The ``tad`` command. Each subcommand lives in its own module and is imported only
when it runs, so ``tad score`` does not pay for torch and ``tad --help`` stays fast."""
from __future__ import annotations

import importlib
import importlib.util

import click

# command name -> (module, attribute, one-line help shown by `tad --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("tad.cli.demo", "demo", "Render a small synthetic dataset and run the whole pipeline on it."),
    "extract": ("tad.cli.extract", "extract", "Extract clip features from a folder of videos into one HDF5 store."),
    "import-features": ("tad.cli.import_features", "import_features", "Convert per-video .npy/.npz/.pt features into an HDF5 store."),
    "train": ("tad.cli.train", "train", "Train a detector from a config (mmengine Runner)."),
    "eval": ("tad.cli.eval", "eval_", "Run a trained detector on a split, export predictions, print mAP."),
    "detect": ("tad.cli.detect", "detect", "Detect actions in raw videos: extract, then run a trained detector."),
    "stream": ("tad.cli.stream", "stream", "Detect actions online in a live or growing video, as it plays (causal detector)."),
    "score": ("tad.cli.score", "score", "Score ActivityNet-style predictions against annotations (mAP at tIoU)."),
    "visualize": ("tad.cli.visualize", "visualize", "Draw ground truth and predicted segments of a video as a PNG."),
    "convert-annotations": ("tad.cli.convert_annotations", "convert_annotations", "Convert CSV / EPIC-Kitchens-100 / ActivityNet / Multi-THUMOS annotations to tad's JSON."),
    "check-data": ("tad.cli.check_data", "check_data", "Check annotations against a feature store: missing videos, bad segments, drift, rare classes."),
    "init-config": ("tad.cli.init_config", "init_config", "Write a commented training config chosen from your data's statistics."),
    "backbones": ("tad.cli.backbones", "backbones", "List the registered backbones: paper, input, dim, GFLOPs, checkpoints."),
    "convert-checkpoint": ("tad.cli.convert_checkpoint", "convert_checkpoint", "Convert a released non-PyTorch backbone checkpoint (scenic ViViT / MTV Flax) to a .pth."),
}


class LazyGroup(click.Group):
    """Lists only the commands whose module is present; imports a command on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (module, _, _) in COMMANDS.items() if importlib.util.find_spec(module)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or cmd_name not in self.list_commands(ctx):
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tad")
def main() -> None:
    """tad: find where actions start and end in long, untrimmed videos.

    \b
    Typical flow:
      tad extract VIDEO_DIR --backbone tada2d_r50 --checkpoint CKPT -o features.h5
      tad train thumos14_tada2d.py
      tad eval thumos14_tada2d.py work_dirs/.../best.pth --out preds.json
      tad score preds.json --annotations thumos14.json --split test
    """
