"""Interactive views built from core ipywidgets only (JupyterLab, Notebook, VS Code, Colab).

``AttributionView``: teacher vs student token attributions, example by example.
``LayerAttentionView``: the ALP weights (student layers x teacher layers), over training or per example.
``AgreementView``: several runs' teacher-student rationale agreement over training.

A view holds state and layout only: its numbers come from a source (:mod:`kdviz.viz.sources`: live
models, or a run folder), its pictures from :mod:`kdviz.viz.render`, :mod:`kdviz.viz.layer_render`
and :mod:`kdviz.viz.agreement_render`; what every view shares is :class:`kdviz.viz.view_base.View`.
Each shows a static HTML rendering where no widget frontend runs (``_repr_html_``). One module per
view; this one gathers them.
"""

from kdviz.viz.agreement_view import AgreementView
from kdviz.viz.attribution_view import CAPTUM_CHOICES, CORRECTNESS, ORDERS, AttributionView
from kdviz.viz.layer_view import EXAMPLES_MEAN, OVER_TRAINING, PER_EXAMPLE, WINDOW_MEAN, LayerAttentionView

__all__ = ["AgreementView", "AttributionView", "LayerAttentionView", "CAPTUM_CHOICES", "CORRECTNESS", "ORDERS",
           "EXAMPLES_MEAN", "OVER_TRAINING", "PER_EXAMPLE", "WINDOW_MEAN"]
