"""A griffe extension for the API reference: the Sphinx roles in kdviz's docstrings
(``:class:`~kdviz.runs.Run` ``, ``:func:`kdviz.distill.distill` ``) shown as code, as a reader of the
source reads them (``~`` keeps the last name only)."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _as_code(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRolesAsCode(griffe.Extension):
    """Rewrites every role in a docstring as an inline code span."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_as_code, obj.docstring.value)
