"""Which drawing code a notebook's figures came from: a short digest printed under them.

Figure outputs cannot be compared by nbval (their pixels differ between machines), so a notebook
prints :func:`figure_stamp` after drawing; nbval compares that line with the committed one, and a
test compares the committed lines with the digest of the code as committed. A figure drawing
function changed without the notebooks run again fails both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
DRAWING_CODE = ("report.py", "viz/history_figures.py", "viz/render.py", "viz/layer_render.py",
                "viz/agreement_render.py", "viz/colours.py", "viz/view_base.py", "viz/attribution_view.py",
                "viz/layer_view.py", "viz/agreement_view.py")
"""The modules that draw figures, tables and views (paths inside the package)."""
STAMP_PREFIX = "figures drawn by kdviz drawing code"
_LETTERS = "abcdefghijklmnop"  # hex digits as letters: nbval's number sanitiser leaves the stamp whole


def drawing_code_digest(length: int = 12) -> str:
    """A digest of :data:`DRAWING_CODE`'s source, as ``length`` letters (a-p)."""
    digest = hashlib.sha256()
    for name in DRAWING_CODE:
        digest.update(name.encode() + b"\0" + (_PACKAGE / name).read_bytes())
    return "".join(_LETTERS[int(c, 16)] for c in digest.hexdigest()[:length])


def figure_stamp() -> str:
    """The line a notebook prints after its figures."""
    return f"{STAMP_PREFIX} {drawing_code_digest()}"
