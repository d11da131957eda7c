"""The table of registered backbones that ``tad backbones`` prints, built from their cards.

Contract: every class in ``BACKBONES`` carries a class-level ``card``
(:class:`~tad.features.backbones.base.BackboneCard`); the table is read from the cards
alone, so listing never builds a model. ``backbone_details`` (one backbone) also builds
the model once with its defaults to show the ``tad extract`` pre-processing its
``BackboneSpec`` carries. A new backbone appears here by registering itself with a card;
nothing in this module names a backbone.
"""
from __future__ import annotations

import shlex

from tad.errors import TadInputError
from tad.features.backbones.base import BackboneCard
from tad.features.registry import BACKBONES

#: Columns of the plain-text and Markdown tables: (header, card -> cell text).
COLUMNS: tuple[tuple[str, object], ...] = (
    ("input (T x interval @ crop)", lambda c: c.input),
    ("normalisation", lambda c: c.norm),
    ("dim", lambda c: str(c.feature_dim)),
    ("GFLOPs", lambda c: "-" if c.gflops is None else f"{c.gflops:.1f}"),
    ("continual", lambda c: ", ".join(c.continual) or "-"),
)
#: Extraction line shown per backbone in the README table (THUMOS14 at 30 fps).
THUMOS_LINE = "tad extract thumos14/videos -o thumos14_{name}.h5 --backbone {name} --checkpoint {checkpoint}"


def registered_cards() -> dict[str, BackboneCard | None]:
    """Registry name -> card (``None`` when a class has none), sorted by name."""
    import tad.features.backbones  # noqa: F401  (registers every backbone module)

    return {name: getattr(cls, "card", None) for name, cls in sorted(BACKBONES.module_dict.items())}


def card_of(name: str) -> BackboneCard:
    """The card of backbone ``name``; TadInputError naming the known backbones otherwise."""
    cards = registered_cards()
    if name not in cards:
        raise TadInputError("NAME", f"unknown backbone {name!r}; registered: {', '.join(cards)}")
    if cards[name] is None:
        raise TadInputError("NAME", f"backbone {name!r} has no card (its class sets no `card`)")
    return cards[name]


def _rows(cards: dict[str, BackboneCard | None]) -> list[list[str]]:
    rows = []
    for name, card in cards.items():
        if card is None:
            rows.append([name, "(no card)"] + ["-"] * len(COLUMNS))
        else:
            rows.append([name, card.paper] + [cell(card) for _, cell in COLUMNS])
    return rows


def format_table(cards: dict[str, BackboneCard | None] | None = None) -> str:
    """Plain-text table: name, paper, input, normalisation, dim, GFLOPs, continual modes;
    then, per backbone, the checkpoint files it loads and where they are published."""
    cards = registered_cards() if cards is None else cards
    header = ["backbone", "paper"] + [h for h, _ in COLUMNS]
    rows = _rows(cards)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", "GFLOPs: per clip at the input size shown, 2 FLOPs per multiply-add "
                  "(torch.utils.flop_counter).", "", "Checkpoints (loaded unchanged with --checkpoint):"]
    for name, card in cards.items():
        if card is None:
            continue
        files = ", ".join(card.checkpoints) or "(none: --random-init only)"
        lines.append(f"  {name}: {files}" + (f"  [{card.source}]" if card.source else ""))
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(cards: dict[str, BackboneCard | None] | None = None) -> str:
    """The README's backbone table (Markdown), with one THUMOS14 extraction line per backbone."""
    cards = registered_cards() if cards is None else cards
    header = ["backbone", "paper"] + [h for h, _ in COLUMNS] + ["checkpoints (where published)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, (name, card) in zip(_rows(cards), cards.items()):
        files = "-" if card is None else (", ".join(f"`{f}`" for f in card.checkpoints) or "-")
        if card is not None and card.source:
            files += f" ({card.source})"
        lines.append("| " + " | ".join([f"`{row[0]}`"] + [_md(c) for c in row[1:]] + [_md(files)]) + " |")
    lines += ["", "```bash"]
    for name, card in cards.items():
        if card is None:
            continue
        checkpoint = card.checkpoints[0] if card.checkpoints else None
        line = THUMOS_LINE.format(name=name, checkpoint=shlex.quote(checkpoint)) if checkpoint else \
            THUMOS_LINE.format(name=name, checkpoint="X").replace("--checkpoint X", "--random-init")
        lines.append(line)
    lines.append("```")
    return "\n".join(lines)


def backbone_details(name: str) -> str:
    """Everything about one backbone: its card and the defaults ``tad extract`` takes from its spec."""
    card = card_of(name)
    model = BACKBONES.build(dict(type=name))
    spec = model.spec
    lines = [
        f"{name}: {card.paper}",
        f"  input          {card.input}",
        f"  normalisation  {card.norm}",
        f"  feature dim    {card.feature_dim}",
        f"  GFLOPs/clip    {'-' if card.gflops is None else f'{card.gflops:.1f}'} (2 FLOPs per multiply-add)",
        f"  checkpoints    {', '.join(card.checkpoints) or '(none: --random-init only)'}",
        f"  published at   {card.source or '-'}",
        f"  continual      {', '.join(card.continual) or '-'}",
        "  tad extract defaults (BackboneSpec):",
        f"    clip_len {spec.clip_len}, frame_interval {spec.frame_interval}, fps {spec.fps:g}, "
        f"clip_stride {spec.clip_stride}, short_side {spec.short_side}, crop {spec.crop}",
        f"    mean {tuple(spec.mean)}, std {tuple(spec.std)}, feature_dim {spec.feature_dim}",
    ]
    if spec.extra:
        lines.append(f"    extra {spec.extra}")
    return "\n".join(lines)
