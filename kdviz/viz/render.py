"""Pure rendering: token heatmaps as self-contained HTML and as matplotlib figures, layer-attention heatmaps.

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


BLOCK_SIZE = 32
"""Tokens per line of a heatmap: longer examples wrap into blocks of this many."""
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
    bar = '<td class="kdviz-boundary" style="padding: 0; width: 3px; background: #444444;"></td>'
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
        parts.append('<div style="font-size: 11px;"><span style="display: inline-block; width: 3px; height: 11px; '
                     'background: #444444;"></span> second sentence starts</div>')
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
                       block_size: int = BLOCK_SIZE) -> Figure:
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


def bucket_edges(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """For each student row, the first and last allowed teacher column: (row, first, last)."""
    edges = []
    for row, allowed in enumerate(np.asarray(mask, dtype=bool)):
        columns = np.flatnonzero(allowed)
        if len(columns):
            edges.append((row, int(columns[0]), int(columns[-1])))
    return edges


def _draw_layer_attention(axes, alpha: np.ndarray, student_layers, teacher_layers, mask, annotate: bool):
    from matplotlib.patches import Rectangle

    image = axes.imshow(alpha, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    if annotate:
        for (i, j), value in np.ndenumerate(alpha):
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if value < 0.6 else "black")
    if mask is not None and not np.asarray(mask, dtype=bool).all():
        for row, first, last in bucket_edges(mask):
            axes.add_patch(Rectangle((first - 0.5, row - 0.5), last - first + 1, 1, fill=False, edgecolor="red",
                                     linewidth=1.5))
    axes.set_xticks(range(len(teacher_layers)), [str(t) for t in teacher_layers])
    axes.set_yticks(range(len(student_layers)), [str(s) for s in student_layers])
    axes.set_xlabel("teacher layer")
    axes.set_ylabel("student layer")
    return image


def layer_attention_figure(alpha, student_layers: Sequence[int], teacher_layers: Sequence[int], *,
                           mask=None, title: str | None = None) -> Figure:
    """Heatmap of ALP weights, values written in, colour bar, bucket boundaries (red) when masked.

    Args:
        alpha: (M, N) weights of student layers over teacher layers.
        student_layers, teacher_layers: ``hidden_states`` indices of rows and columns.
        mask: (M, N) allowed pairs of the variant (``kdviz.projection.layer_mask``); boxes are drawn
            around each row's bucket when some pairs are not allowed.
        title: figure title.

    Returns:
        A ``Figure``.
    """
    alpha = np.asarray(alpha, dtype=float)
    figure = Figure(figsize=(1.6 + 0.7 * alpha.shape[1], 1.3 + 0.5 * alpha.shape[0]), dpi=100)
    axes = figure.add_subplot()
    image = _draw_layer_attention(axes, alpha, student_layers, teacher_layers, mask, annotate=True)
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def layer_attention_small_multiples(history: Sequence[tuple[int, np.ndarray]], student_layers, teacher_layers, *,
                                    mask=None, columns: int = 4, max_panels: int = 8,
                                    title: str | None = None) -> Figure:
    """Small layer-attention heatmaps over training: at most ``max_panels`` logged steps, evenly spaced.

    Args:
        history: (step, (M, N) alpha) pairs in training order.
        student_layers, teacher_layers, mask: as :func:`layer_attention_figure`.
        columns: panels per row.
        max_panels: the first and last step are always shown, the others evenly spaced between.
        title: figure title.

    Returns:
        A ``Figure``; only the outer panels carry axis labels.
    """
    history = list(history)
    if len(history) > max_panels:
        picks = np.unique(np.linspace(0, len(history) - 1, max_panels).round().astype(int))
        history = [history[i] for i in picks]
    count = max(len(history), 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(0.9 + 2.3 * columns, 0.7 + (0.35 + 0.3 * len(student_layers)) * rows), dpi=100,
                    layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    image = None
    for index, axes in enumerate(grid.flat):
        if index >= len(history):
            axes.set_visible(False)
            continue
        step, alpha = history[index]
        image = _draw_layer_attention(axes, np.asarray(alpha, dtype=float), student_layers, teacher_layers, mask,
                                      annotate=False)
        axes.set_title(f"step {step}", fontsize=9)
        if index % columns:
            axes.set_ylabel("")
            axes.set_yticklabels([])
        if index < len(history) - columns:
            axes.set_xlabel("")
    if image is not None:
        figure.colorbar(image, ax=grid, shrink=0.8)
    if title:
        figure.suptitle(title)
    return figure
