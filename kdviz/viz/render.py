"""Pure rendering: token heatmaps as self-contained HTML and as matplotlib figures, layer-attention heatmaps.

No widgets, no I/O, no JavaScript: every function takes plain lists or arrays and returns a string
or a ``matplotlib.figure.Figure``. Every token string is HTML-escaped.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

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


def agreement_scores(teacher: np.ndarray, student: np.ndarray, k: int = 3) -> dict[str, float]:
    """How far two token-score vectors agree.

    Args:
        teacher, student: (L,) scores over the same real tokens.
        k: size of the top sets compared.

    Returns:
        ``cosine``, ``spearman`` (rank correlation) and ``top_k_overlap`` (shared share of the k
        highest-scored tokens).
    """
    teacher, student = np.asarray(teacher, dtype=float), np.asarray(student, dtype=float)
    norms = np.linalg.norm(teacher) * np.linalg.norm(student)
    cosine = float(teacher @ student / norms) if norms > 0 else 0.0
    spearman = float(spearmanr(teacher, student)[0]) if len(teacher) > 1 else 1.0
    k = min(k, len(teacher))
    top_t, top_s = set(np.argsort(-teacher)[:k]), set(np.argsort(-student)[:k])
    return {"cosine": cosine, "spearman": 0.0 if np.isnan(spearman) else spearman,
            "top_k_overlap": len(top_t & top_s) / k if k else 1.0}


def _colour(value: float, scale: float, diverging: bool) -> str:
    strength = 0.0 if scale <= 0 else min(abs(value) / scale, 1.0)
    if diverging and value < 0:
        return f"rgba(33, 102, 172, {strength:.3f})"  # blue: student above teacher
    return f"rgba(214, 39, 40, {strength:.3f})" if diverging else f"rgba(230, 85, 13, {strength:.3f})"


def token_heatmap_html(
    tokens: Sequence[str],
    rows: dict[str, Sequence[float]],
    *,
    title: str | None = None,
    diverging_rows: Sequence[str] = (),
    merge_words: bool = False,
) -> str:
    """Rows of scores over the same tokens as one self-contained HTML table (inline CSS, no script).

    Args:
        tokens: L token strings, shared by every row (so rows align token by token).
        rows: row name -> L scores.
        title: optional caption.
        diverging_rows: rows drawn red (positive) / blue (negative), e.g. a difference.
        merge_words: join word pieces; merged words carry the sum of their pieces' scores.

    Returns:
        An HTML fragment; every token and name is escaped.
    """
    names = list(rows)
    matrix = np.array([np.asarray(rows[name], dtype=float) for name in names]).reshape(len(names), -1)
    if matrix.shape[1] != len(tokens):
        raise ValueError(f"Rows have {matrix.shape[1]} scores for {len(tokens)} tokens.")
    if merge_words:
        tokens, matrix = merge_wordpieces(tokens, matrix)
    cell = "padding: 2px 4px; border-radius: 3px; white-space: nowrap;"
    parts = [f'<div class="kdviz-heatmap" style="{_FONT} overflow-x: auto;">']
    if title:
        parts.append(f'<div style="font-weight: 600; margin-bottom: 4px;">{html.escape(title)}</div>')
    parts.append('<table style="border-collapse: separate; border-spacing: 2px;">')
    for name, values in zip(names, matrix):
        diverging = name in diverging_rows
        scale = float(np.abs(values).max()) if len(values) else 0.0
        parts.append(f'<tr><th style="text-align: right; padding-right: 8px; font-weight: 500; white-space: nowrap;">'
                     f'{html.escape(name)}</th>')
        for token, value in zip(tokens, values):
            parts.append(f'<td title="{value:.3f}" style="{cell} background: {_colour(value, scale, diverging)};">'
                         f'{html.escape(token)}</td>')
        parts.append("</tr>")
    parts.append("</table></div>")
    return "".join(parts)


def attribution_comparison_html(tokens: Sequence[str], teacher: Sequence[float], student: Sequence[float], *,
                                title: str | None = None, merge_words: bool = False) -> str:
    """Teacher, student and teacher - student rows over the same tokens (see :func:`token_heatmap_html`)."""
    teacher, student = np.asarray(teacher, dtype=float), np.asarray(student, dtype=float)
    return token_heatmap_html(tokens, {"teacher": teacher, "student": student, "teacher - student": teacher - student},
                              title=title, diverging_rows=("teacher - student",), merge_words=merge_words)


def attribution_figure(tokens: Sequence[str], teacher: Sequence[float], student: Sequence[float], *,
                       title: str | None = None, merge_words: bool = False) -> Figure:
    """The same three rows as a matplotlib figure (for PNG export and static notebooks).

    Returns:
        A ``Figure`` with one heatmap of shape (3, L) and the tokens as column labels.
    """
    matrix = np.array([teacher, student], dtype=float)
    if merge_words:
        tokens, matrix = merge_wordpieces(tokens, matrix)
    difference = matrix[0] - matrix[1]
    figure = Figure(figsize=(max(4.0, 0.45 * len(tokens) + 1.5), 2.4), dpi=110)
    axes_scores, axes_diff = figure.subplots(2, 1, gridspec_kw={"height_ratios": [2, 1]}, sharex=True)
    axes_scores.imshow(matrix, cmap="Oranges", vmin=0, vmax=max(float(matrix.max()), 1e-12), aspect="auto")
    limit = max(float(np.abs(difference).max()), 1e-12)
    axes_diff.imshow(difference[None], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes_scores.set_yticks([0, 1], ["teacher", "student"])
    axes_diff.set_yticks([0], ["teacher - student"])
    axes_diff.set_xticks(range(len(tokens)), list(tokens), rotation=60, ha="right", fontsize=8)
    if title:
        axes_scores.set_title(title, fontsize=9)
    figure.tight_layout()
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
