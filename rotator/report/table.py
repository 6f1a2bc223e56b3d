"""A plain text table for the terminal: columns that fit the width, long cells folded.

rich rendered the report's table before; at thousands of credentials its per-cell
measuring was half of a pass's CPU (5.3 s of 12.5 s at 3,000 credentials), for a layout
this small module draws in a few list operations: no-wrap columns keep their natural
width, the widest fold columns give way first (never below their minimum), and a
cell longer than its column is cut into lines of that width."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

GAP = "  "
ANSI = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "bold": "1", "bold red": "1;31", "italic": "3"}


@dataclass(frozen=True)
class Column:
    header: str
    fold: bool = False  # else no-wrap: always its natural width
    min_width: int = 0


@dataclass(frozen=True)
class Cell:
    text: str
    style: str = ""


def terminal_width(out: TextIO, width: int | None) -> int:
    if width is not None:
        return width
    try:
        return os.get_terminal_size(out.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


def paint(text: str, style: str, color: bool) -> str:
    if not color or not style or not text:
        return text
    return f"\x1b[{ANSI[style]}m{text}\x1b[0m"


def widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int) -> list[int]:
    natural = [len(c.header) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            natural[i] = max(natural[i], max((len(line) for line in cell.text.split("\n")), default=0))
    out = list(natural)
    if sum(out) + len(GAP) * (len(columns) - 1) <= width:
        return out
    folds = [i for i, c in enumerate(columns) if c.fold]
    room = width - len(GAP) * (len(columns) - 1) - sum(natural[i] for i, c in enumerate(columns) if not c.fold)
    # Narrow the widest fold column first, a character at a time, never below its minimum:
    # short cells (a finding code) stay whole while a long name folds.
    share = {i: natural[i] for i in folds}
    excess = sum(share.values()) - room
    while excess > 0:
        shrinkable = [i for i in folds if share[i] > columns[i].min_width]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: share[i])
        share[widest] -= 1
        excess -= 1
    for i in folds:
        out[i] = min(natural[i], share[i])
    return out


def fold(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        lines += [line[i : i + width] for i in range(0, len(line), width)] or [""]
    return lines


def render(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int, color: bool, title: str = ""
) -> list[str]:
    sizes = widths(columns, rows, width)
    out: list[str] = [paint(title, "italic", color)] if title else []
    out.append(GAP.join(paint(c.header.ljust(w), "bold", color) for c, w in zip(columns, sizes, strict=True)).rstrip())
    out.append("─" * min(width, sum(sizes) + len(GAP) * (len(sizes) - 1)))
    last = len(columns) - 1
    for row in rows:
        cells = [fold(cell.text, w) for cell, w in zip(row, sizes, strict=True)]
        for n in range(max(len(c) for c in cells)):
            parts = []
            for i, (cell, lines, w) in enumerate(zip(row, cells, sizes, strict=True)):
                text = lines[n] if n < len(lines) else ""
                padded = text if i == last else text.ljust(w)
                parts.append(paint(text, cell.style, color) + padded[len(text) :])
            out.append(GAP.join(parts).rstrip())
    return out


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]


def write_lines(out: TextIO, lines: Iterable[str]) -> None:
    """A line at a time, flushed, as a terminal program writes: a reader that leaves
    early (``| head -2``) is then noticed as a broken pipe (the command exits 0 for it)
    rather than the whole table landing in the pipe's buffer first."""
    for line in lines:
        out.write(line + "\n")
        out.flush()
