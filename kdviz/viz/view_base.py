"""What every view shares: the widget box and its label style, the export buttons and files, and the
display data (the live widget where a frontend runs, the view's HTML where none does).

A view (:class:`View`) holds state and layout only: it renders its current state as HTML
(:meth:`View.render_html`) and as a matplotlib figure (:meth:`View.figure`, for a PNG export).
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import ClassVar, Iterable

import ipywidgets as widgets

# ipywidgets clips a description to its label's box (overflow: hidden), and description_width
# "initial" makes that box exactly as wide as the text, so a letter whose ink starts a hair left of
# its advance ("t", "v", "c") loses its first pixel column. A little left padding keeps it whole.
_LABEL_STYLE = "<style>.kdviz-widget .widget-label { padding-left: 2px; }</style>"


class View:
    """A view's shared machinery. A subclass calls :meth:`_start` with its controls, and implements
    :meth:`render_html`, :meth:`figure`, :meth:`refresh` and :meth:`_rows`.

    Attributes:
        controls: name -> ipywidgets control (``export_png`` and ``export_html`` among them).
        html: the rendered view; status: one line under it (what matched, where an export went).
        export_dir: where exports go by default.
    """

    export_name: ClassVar[str] = "view"
    """The default export file's stem and the exported page's title."""

    def _start(self, controls: dict[str, widgets.Widget]) -> None:
        """Add the export buttons to ``controls`` and set up ``html``, ``status`` and ``export_dir``."""
        self.controls = {**controls, "export_png": widgets.Button(description="export PNG"),
                         "export_html": widgets.Button(description="export HTML")}
        self.export_dir = Path(".")
        self.html, self.status = widgets.HTML(), widgets.HTML()
        fit_descriptions(self.controls.values())
        self.controls["export_png"].on_click(lambda _: self.export_png())
        self.controls["export_html"].on_click(lambda _: self.export_html())

    def render_html(self) -> str:
        """The current state as standalone HTML (inline CSS, no script)."""
        raise NotImplementedError

    def figure(self):
        """The current state as a matplotlib figure."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Re-render the current state into ``self.html``."""
        raise NotImplementedError

    def _rows(self) -> list[widgets.Widget]:
        raise NotImplementedError

    def _export_stem(self) -> str:
        return self.export_name.replace(" ", "-")

    def export_png(self, path: str | Path | None = None) -> Path:
        """Write the current state as PNG (default: ``<export_dir>/<name>.png``)."""
        path = Path(path or self.export_dir / f"{self._export_stem()}.png")
        path.write_bytes(png_bytes(self.figure()))
        self.status.value = _wrote(path)
        return path

    def export_html(self, path: str | Path | None = None) -> Path:
        """Write the current state as a standalone HTML page (default: ``<export_dir>/<name>.html``)."""
        path = Path(path or self.export_dir / f"{self._export_stem()}.html")
        path.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>kdviz {self.export_name}</title>'
                        f'</head><body>{self.render_html()}</body></html>', encoding="utf-8")
        self.status.value = _wrote(path)
        return path

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        box = widgets.VBox([widgets.HTML(_LABEL_STYLE)] + self._rows())
        box.add_class("kdviz-widget")
        return box

    def _repr_mimebundle_(self, **kwargs):
        bundle = _widget_bundle(self.widget, **kwargs)
        bundle["text/html"] = self.render_html()  # shown where no widget frontend runs
        return bundle

    def _repr_html_(self) -> str:
        return self.render_html()

    def _export_buttons(self) -> widgets.HBox:
        return widgets.HBox([self.controls["export_png"], self.controls["export_html"]])


def _wrote(path: Path) -> str:
    """The status line after an export: where the file went."""
    return f"wrote <code>{html.escape(str(path.resolve()))}</code>"


def _widget_bundle(widget: widgets.Widget, **kwargs) -> dict:
    """A widget's display data: ipywidgets 8's ``_repr_mimebundle_``, or for 7.x (Colab's) the same
    widget-view entry that 7.x publishes from ``_ipython_display_``."""
    if hasattr(widget, "_repr_mimebundle_"):
        return widget._repr_mimebundle_(**kwargs) or {}
    return {"text/plain": repr(widget), "application/vnd.jupyter.widget-view+json": {
        "version_major": 2, "version_minor": 0, "model_id": widget.model_id}}


def fit_descriptions(controls: Iterable[widgets.Widget]) -> None:
    """Size each control's description to its text (buttons have no description width to set)."""
    for control in controls:
        if hasattr(control, "style") and hasattr(control.style, "description_width"):
            control.style.description_width = "initial"


def png_bytes(figure) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
