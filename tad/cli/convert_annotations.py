"""``tad convert-annotations``: CSV / EPIC-Kitchens-100 / ActivityNet / Multi-THUMOS
annotations -> the annotation JSON tad reads (thin layer over ``tad.datasets.annotation_convert``)."""
from __future__ import annotations

from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "convert-annotations",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  # your own CSV: video,start,end,label[,subset]  (seconds or HH:MM:SS.ff)
  tad convert-annotations labels.csv -o ann.json --fps-from-videos videos/
  # EPIC-Kitchens-100: one file per task (class names / durations read from
  # EPIC_100_{verb,noun}_classes.csv and EPIC_100_video_info.csv beside the CSVs)
  tad convert-annotations EPIC_100_train.csv EPIC_100_validation.csv --task verb -o epic_verb.json
  tad convert-annotations EPIC_100_train.csv EPIC_100_validation.csv --task noun -o epic_noun.json
  # ActivityNet-1.3's official JSON, ids prefixed like ActionFormer's feature files
  tad convert-annotations activity_net.v1-3.min.json -o anet.json --id-prefix v_
  # Multi-THUMOS (super-events-cvpr18 data/multithumos.json), overlapping labels kept
  tad convert-annotations multithumos.json -o multithumos_ann.json --class-names class_list.txt

\b
The CSV needs a header row. Rows without a subset get --default-subset. Without
--fps-from-videos (or a duration column / EPIC video info) a video's duration is
its last annotated end time, and a note says so. Every row is kept: instances that
overlap in time (multi-label data) stay separate.""",
)
@click.argument("inputs", metavar="FILE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Annotation JSON to write.")
@click.option("--fps-from-videos", "videos_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of the videos: each video's duration and fps are read from its file "
                   "(ids = paths relative to the folder without extension, as `tad extract` names them).")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "epic", "activitynet", "multithumos"]),
              default="auto", show_default=True, help="Input format (auto: from the file's content).")
@click.option("--task", type=click.Choice(["verb", "noun"]), default=None,
              help="EPIC-Kitchens-100: which classes to write (one annotation file per task).")
@click.option("--class-names", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Class table: EPIC's id,key CSV, or one class name per line (line i = class id i).")
@click.option("--video-info", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="EPIC_100_video_info.csv (durations, fps); default: the one beside the input.")
@click.option("--subset", default=None, help="EPIC: subset of every video (default: training / validation from the file name).")
@click.option("--default-subset", default="training", show_default=True,
              help="CSV: subset of rows without a subset value.")
@click.option("--id-prefix", default="", help="Prepend this to every video id (e.g. v_ to match ActivityNet feature files).")
@click.option("--strip-prefix", default="", help="Remove this from the start of every video id.")
def convert_annotations(inputs: tuple[Path, ...], output: Path, videos_dir: Path | None, fmt: str, task: str | None,
                        class_names: Path | None, video_info: Path | None, subset: str | None, default_subset: str,
                        id_prefix: str, strip_prefix: str) -> None:
    """Convert annotation FILE(s) into the annotation JSON that tad reads."""
    from tad.datasets.annotation_convert import convert_annotations as run, write_annotation_json
    from tad.output_guard import refuse_output_over_inputs

    try:
        refuse_output_over_inputs({"-o": output}, {"FILE": list(inputs), "--class-names": class_names,
                                                   "--video-info": video_info})
        if output.suffix.lower() != ".json":
            raise TadInputError(output, "-o must name a .json file")
        result = run(list(inputs), fmt=fmt, task=task, videos_dir=videos_dir, class_names=class_names,
                     video_info=video_info, subset=subset, default_subset=default_subset, id_prefix=id_prefix,
                     strip_prefix=strip_prefix)
        write_annotation_json(result.data, output)
    except (TadInputError, OSError) as exc:
        fail(exc)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    subsets = {}
    for entry in result.data["database"].values():
        subsets[entry["subset"]] = subsets.get(entry["subset"], 0) + 1
    shown = ", ".join(f"{name} {count}" for name, count in subsets.items())
    click.echo(f"{output}: {result.num_videos} videos ({shown}), {result.num_segments} segments, "
               f"{len(result.classes)} classes")
