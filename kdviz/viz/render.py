"""Pure rendering of token heatmaps: self-contained HTML and matplotlib figures (layer attention:
:mod:`kdviz.viz.layer_render`).

No widgets, no I/O, no JavaScript: every function takes plain lists or arrays and returns a string
or a ``matplotlib.figure.Figure``. Every token string is HTML-escaped.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from kdviz.viz.colours import cell_style, legend_html

_FONT = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;"


def merge_wordpieces(tokens: Sequence[str], scores: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Join WordPiece continuations (``##ing``) to their word; a word's score is the sum of its pieces'.

    Args:
        tokens: L token strings.
        scores: (..., L) scores, e.g. (rows, L).

    Returns:
        ``(words, merged)``: W words and (..., W) summed scores.
    """
    scores = np.asarray(scores, dtype=float)
    words: list[str] = []
    groups: list[int] = []
    for token in tokens:
        if token.startswith("##") and words:
            words[-1] += token[2:]
        else:
            words.append(token)
        groups.append(len(words) - 1)
    merged = np.zeros(scores.shape[:-1] + (len(words),))
    np.add.at(merged, (..., np.array(groups)), scores)
    return words, merged


BLOCK_SIZE, FIGURE_BLOCK_SIZE = 16, 20
"""Tokens per line of an HTML heatmap (a notebook's width) and of a figure: longer examples wrap."""
DIFFERENCE_ENDS = ("student higher", "teacher higher")


def sentence_boundary(tokens: Sequence[str]) -> int | None:
    """Where a sentence pair's second sentence starts: after the first ``[SEP]`` that is not the last token."""
    for i, token in enumerate(tokens[:-1]):
        if token == "[SEP]":
            return i + 1
    return None


def shared_scale(*rows) -> float:
    """The largest magnitude over every row given: one scale for rows that are compared."""
    values = [np.abs(np.asarray(row, dtype=float)).max() for row in rows if np.size(row)]
    return float(max(values, default=0.0))


def token_heatmap_html(
    tokens: Sequence[str],
    rows: dict[str, Sequence[float]],
    *,
    title: str | None = None,
    diverging_rows: Sequence[str] = (),
    signed: bool = False,
    scale: float | None = None,
    merge_words: bool = False,
    block_size: int = BLOCK_SIZE,
    difference_ends: tuple[str, str] = ("", ""),
) -> str:
    """Rows of scores over the same tokens as one self-contained HTML fragment (inline CSS, no script).

    Every row is drawn on one scale (``scale``, by default the largest magnitude of the score rows),
    so equal values have equal colours across rows; diverging rows (a difference) are drawn red and
    blue around zero on the same absolute scale, so a small difference stays pale. Colours are
    opaque, with their text colour set (legible on light and dark themes), and a legend gives the
    scale's values. Long rows wrap into blocks of ``block_size`` tokens; in a sentence pair a dark
    bar marks where the second sentence starts.

    Args:
        tokens: L token strings, shared by every row (so rows align token by token).
        rows: row name -> L scores.
        title: optional caption.
        diverging_rows: rows drawn red (positive) / blue (negative), e.g. a difference.
        signed: draw the score rows red / blue around zero too (signed attributions).
        scale: the value drawn at full intensity (default: the score rows' largest magnitude).
        merge_words: join word pieces; merged words carry the sum of their pieces' scores.
        block_size: tokens per block.
        difference_ends: words for the diverging legend's negative and positive ends.

    Returns:
        An HTML fragment; every token and name is escaped.
    """
    names = list(rows)
    matrix = np.array([np.asarray(rows[name], dtype=float) for name in names]).reshape(len(names), -1)
    if matrix.shape[1] != len(tokens):
        raise ValueError(f"Rows have {matrix.shape[1]} scores for {len(tokens)} tokens.")
    if merge_words:
        tokens, matrix = merge_wordpieces(tokens, matrix)
    diverging = [name in diverging_rows for name in names]
    score_rows = [values for values, is_diverging in zip(matrix, diverging) if not is_diverging]
    if scale is None:
        scale = shared_scale(*(score_rows or matrix))
    boundary = sentence_boundary(tokens)
    cell = "padding: 2px 4px; border-radius: 3px; white-space: nowrap;"
    bar = ('<td class="kdviz-boundary" style="padding: 0; min-width: 4px; width: 4px; background: #7f7f7f;">'
           '<div style="width: 4px;"></div></td>')  # mid-grey: visible on light and dark themes
    parts = [f'<div class="kdviz-heatmap" style="{_FONT} overflow-x: auto;">']
    if title:
        parts.append(f'<div style="font-weight: 600; margin-bottom: 4px;">{html.escape(title)}</div>')
    for start in range(0, max(len(tokens), 1), block_size):
        columns = range(start, min(start + block_size, len(tokens)))
        parts.append('<table style="border-collapse: separate; border-spacing: 2px; margin-bottom: 4px;">')
        for name, values, is_diverging in zip(names, matrix, diverging):
            parts.append(f'<tr><th style="text-align: right; padding-right: 8px; font-weight: 500; '
                         f'white-space: nowrap;">{html.escape(name)}</th>')
            for i in columns:
                if i == boundary:
                    parts.append(bar)
                style = cell_style(values[i], scale, signed or is_diverging)
                parts.append(f'<td title="{values[i]:.3f}" style="{cell} {style}">{html.escape(tokens[i])}</td>')
            parts.append("</tr>")
        parts.append("</table>")
    parts.append(legend_html("signed score" if signed else "score", scale, signed))
    if any(diverging):
        low, high = difference_ends
        parts.append(legend_html("difference", scale, True, low=low, high=high))
    if boundary is not None:
        parts.append('<div style="font-size: 11px;"><span style="display: inline-block; width: 4px; height: 11px; '
                     'background: #7f7f7f;"></span> second sentence starts</div>')
    parts.append("</div>")
    return "".join(parts)


def attribution_comparison_html(tokens: Sequence[str], teacher: Sequence[float], student: Sequence[float], *,
                                title: str | None = None, merge_words: bool = False, signed: bool = False) -> str:
    """Teacher, student and teacher - student rows over the same tokens, on one scale (see
    :func:`token_heatmap_html`)."""
    teacher, student = np.asarray(teacher, dtype=float), np.asarray(student, dtype=float)
    return token_heatmap_html(tokens, {"teacher": teacher, "student": student, "teacher - student": teacher - student},
                              title=title, diverging_rows=("teacher - student",), signed=signed,
                              merge_words=merge_words, difference_ends=DIFFERENCE_ENDS)


def attribution_figure(tokens: Sequence[str], teacher: Sequence[float], student: Sequence[float], *,
                       title: str | None = None, merge_words: bool = False, signed: bool = False,
                       block_size: int = FIGURE_BLOCK_SIZE) -> Figure:
    """The same rows as a matplotlib figure (for PNG export and static notebooks).

    Teacher and student share one colour scale and the difference is drawn on the same absolute
    scale (with a colour bar each); long examples wrap into blocks of ``block_size`` tokens, and a
    dark line marks where a pair's second sentence starts.

    Returns:
        A ``Figure`` with two heatmaps per block: (2, n) scores and (1, n) difference, the tokens
        as column labels.
    """
    matrix = np.array([teacher, student], dtype=float)
    if merge_words:
        tokens, matrix = merge_wordpieces(tokens, matrix)
    tokens = list(tokens)
    difference = matrix[0] - matrix[1]
    limit = max(shared_scale(matrix), 1e-12)
    score_range = dict(cmap="RdBu_r", vmin=-limit, vmax=limit) if signed else dict(cmap="Oranges", vmin=0, vmax=limit)
    starts = list(range(0, max(len(tokens), 1), block_size))
    width = min(len(tokens), block_size)
    figure_width, bars_width = max(6.5, 0.42 * width + 3.2), 1.4  # inches; the colour bars keep theirs
    figure = Figure(figsize=(figure_width, 0.9 + 2.1 * len(starts)), dpi=110, layout="constrained")
    heatmaps, bars = figure.subfigures(1, 2, width_ratios=[figure_width - bars_width, bars_width])
    grid = heatmaps.subplots(2 * len(starts), 1, gridspec_kw={"height_ratios": [2, 1] * len(starts)}, squeeze=False)
    boundary = sentence_boundary(tokens)
    for block, start in enumerate(starts):
        columns = slice(start, start + block_size)
        axes_scores, axes_diff = grid[2 * block, 0], grid[2 * block + 1, 0]
        scores_image = axes_scores.imshow(matrix[:, columns], aspect="auto", **score_range)
        diff_image = axes_diff.imshow(difference[None, columns], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        count = len(tokens[columns])
        for axes in (axes_scores, axes_diff):
            axes.set_xlim(-0.5, width - 0.5)
            if boundary is not None and start < boundary < start + block_size:
                axes.axvline(boundary - start - 0.5, color="#222222", linewidth=2.5)
        axes_scores.set_yticks([0, 1], ["teacher", "student"])
        axes_scores.set_xticks([])
        axes_diff.set_yticks([0], ["teacher - student"])
        axes_diff.set_xticks(range(count), tokens[columns], rotation=60, ha="right", fontsize=8)
    scores_bar, diff_bar = bars.subplots(2, 1)
    figure.colorbar(scores_image, cax=scores_bar, label="signed score" if signed else "score")
    figure.colorbar(diff_image, cax=diff_bar, label="teacher - student")
    if title:
        figure.suptitle(title, fontsize=9)
    return figure
