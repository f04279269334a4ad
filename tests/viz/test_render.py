"""The pure renderers: escaped HTML heatmaps, aligned rows, figures."""

import re

import numpy as np
import pytest

from kdviz.projection import layer_mask
from kdviz.viz.render import (agreement_scores, attribution_comparison_html, attribution_figure, bucket_edges,
                              layer_attention_figure, layer_attention_small_multiples, merge_wordpieces,
                              token_heatmap_html)


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
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert len(rows) == 3 and cells[0] == cells[1] == cells[2] == words
    titles = re.findall(r'<td title="([-0-9.]+)"', rows[0])
    assert float(titles[1]) == pytest.approx(0.6, abs=1e-3)


def test_agreement_scores():
    same = agreement_scores([0.1, 0.5, 0.2, 0.8], [0.1, 0.5, 0.2, 0.8], k=2)
    assert same == {"cosine": pytest.approx(1.0), "spearman": pytest.approx(1.0), "top_k_overlap": 1.0}
    reversed_ = agreement_scores([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], k=2)
    assert reversed_["spearman"] == pytest.approx(-1.0) and reversed_["top_k_overlap"] == 0.0


def test_figures_render():
    figure = attribution_figure(["[CLS]", "good", "##s", "[SEP]"], [0.1, 0.8, 0.2, 0.0], [0.2, 0.5, 0.5, 0.0],
                                merge_words=True)
    assert [t.get_text() for t in figure.axes[1].get_xticklabels()] == ["[CLS]", "goods", "[SEP]"]
    mask = layer_mask("alp-no", 2, 6).numpy()
    assert bucket_edges(mask) == [(0, 0, 2), (1, 3, 5)]
    alpha = np.where(mask, 1 / 3, 0.0)
    heat = layer_attention_figure(alpha, [1, 2], list(range(1, 7)), mask=mask)
    axes = heat.axes[0]
    assert len(axes.patches) == 2  # one bucket box per student layer
    assert len(axes.texts) == 12 and axes.texts[0].get_text() == "0.33"
    multiples = layer_attention_small_multiples([(10, alpha), (20, alpha), (30, alpha)], [1, 2], list(range(1, 7)))
    assert [a.get_title() for a in multiples.axes if a.get_title()] == ["step 10", "step 20", "step 30"]
    many = layer_attention_small_multiples([(10 * i, alpha) for i in range(1, 16)], [1, 2], list(range(1, 7)))
    titles = [a.get_title() for a in many.axes if a.get_title()]
    assert len(titles) == 8 and titles[0] == "step 10" and titles[-1] == "step 150"


