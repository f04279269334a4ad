"""Views of a distillation: token attributions and layer-attention weights (figures, HTML, widgets)."""
