"""The pure renderers: escaped HTML heatmaps, aligned rows, figures."""

import re

import numpy as np
import pytest

from kdviz.viz.render import attribution_comparison_html, attribution_figure, merge_wordpieces, token_heatmap_html


def test_tokens_are_escaped_and_no_script_is_emitted():
    html = token_heatmap_html(["[CLS]", "<script>alert(1)</script>", "&", "[SEP]"], {"teacher": [0.1, 0.9, 0.2, 0.0]})
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&amp;" in html
    assert "http" not in html  # nothing fetched from the network


def test_rows_align_token_by_token_and_merged_words_sum_their_pieces():
    tokens = ["[CLS]", "un", "##fl", "##inch", "bleak", "[SEP]", "very", "[SEP]"]
    teacher = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.0, 0.4, 0.0])
    student = np.array([0.1, 0.0, 0.1, 0.1, 0.6, 0.0, 0.2, 0.1])
    words, merged = merge_wordpieces(tokens, np.stack([teacher, student]))
    assert words == ["[CLS]", "unflinch", "bleak", "[SEP]", "very", "[SEP]"]
    np.testing.assert_allclose(merged[:, 1], [0.6, 0.2])
    html = attribution_comparison_html(tokens, teacher, student, merge_words=True)
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    cells = [re.findall(r"<td title[^>]*>(.*?)</td>", row) for row in rows]
    assert len(rows) == 3 and cells[0] == cells[1] == cells[2] == words
    titles = re.findall(r'<td title="([-0-9.]+)"', rows[0])
    assert float(titles[1]) == pytest.approx(0.6, abs=1e-3)
    # the pair's second sentence starts after the first [SEP]: one boundary bar per row, before "very"
    assert all(re.search(r'kdviz-boundary[^>]*><div[^>]*></div></td><td title="[-0-9.]+"[^>]*>very<', row) for row in rows)


def cell_colours(html: str) -> list[list[tuple[int, int, int]]]:
    """Each row's cell background colours, as RGB."""
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    return [[tuple(map(int, rgb)) for rgb in re.findall(r"<td title[^>]*background: rgb\((\d+), (\d+), (\d+)\)", row)]
            for row in rows]


def strength(rgb: tuple[int, int, int]) -> float:
    """How far a colour is from white (0: white, 1: the darkest channel at 0)."""
    return max(255 - channel for channel in rgb) / 255


def test_near_identical_scores_give_a_pale_difference_on_one_shared_scale():
    rng = np.random.default_rng(0)
    teacher = np.abs(rng.normal(size=12))
    teacher /= np.linalg.norm(teacher)
    student = teacher + rng.normal(scale=0.004, size=12)
    assert teacher @ student / np.linalg.norm(student) > 0.999
    teacher_row, student_row, difference_row = cell_colours(attribution_comparison_html(
        [f"w{i}" for i in range(12)], teacher, student))
    assert max(strength(rgb) for rgb in difference_row) < 0.05  # within 5% of white: no saturated red/blue
    same = attribution_comparison_html(["a", "b", "c"], [0.2, 0.9, 0.4], [0.2, 0.9, 0.4])
    teacher_row, student_row, difference_row = cell_colours(same)
    assert teacher_row == student_row and all(rgb == (255, 255, 255) for rgb in difference_row)
    # one scale for both rows: a student whose scores are half the teacher's is drawn paler, not equal
    half = cell_colours(attribution_comparison_html(["a", "b"], [0.2, 0.8], [0.1, 0.4]))
    assert strength(half[1][1]) < strength(half[0][1])
    assert 'class="kdviz-legend"' in same and "difference" in same and "student higher" in same


def test_colours_are_opaque_with_their_text_colour_set():
    html = token_heatmap_html(["a", "b"], {"teacher": [0.05, 1.0]})
    assert "rgba" not in html
    styles = re.findall(r'<td title[^>]*style="([^"]*)"', html)
    assert "color: #111111" in styles[0] and "color: #ffffff" in styles[1]  # dark text on pale, light on dark


def test_long_pairs_wrap_into_blocks_and_signed_scores_are_two_sided():
    tokens = ["[CLS]"] + [f"a{i}" for i in range(40)] + ["[SEP]"] + [f"b{i}" for i in range(20)] + ["[SEP]"]
    scores = np.linspace(-1, 1, len(tokens))
    html = token_heatmap_html(tokens, {"teacher": scores}, signed=True, block_size=32)
    assert html.count("<table") == 2 and html.count("kdviz-boundary") == 1
    colours = cell_colours(html)
    first, last = colours[0][0], colours[-1][-1]
    assert first[2] > first[0] and last[0] > last[2]  # blue below zero, red above
    assert "signed score: -1" in html
    figure = attribution_figure(tokens, np.abs(scores), np.abs(scores[::-1]))
    rows = [[label.get_text() for label in axes.get_yticklabels()] for axes in figure.axes]
    assert rows.count(["teacher", "student"]) == rows.count(["teacher - student"]) == 4  # 63 tokens: 4 blocks of 20
    widths = [len(axes.get_xticklabels()) for axes in figure.axes if axes.get_xticklabels()]
    assert max(widths) == 20  # a PNG row holds at most 20 tokens, readable at a notebook's width


def test_figures_render():
    figure = attribution_figure(["[CLS]", "good", "##s", "[SEP]"], [0.1, 0.8, 0.2, 0.0], [0.2, 0.5, 0.5, 0.0],
                                merge_words=True)
    assert [t.get_text() for t in figure.axes[1].get_xticklabels()] == ["[CLS]", "goods", "[SEP]"]



