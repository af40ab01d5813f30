"""griffe extension: Sphinx cross-reference roles in docstrings become inline code.

chatlens docstrings write ``:meth:`init```, ``:func:`chatlens.ingest.pipeline.ingest``` and
``:class:`~chatlens.errors.InputError```; mkdocstrings would show the role markup as text. This
turns each into ```init```, ```chatlens.ingest.pipeline.ingest``` and ```InputError``` (a
leading ``~`` keeps the last part, as Sphinx does).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:meth|func|class|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(_plain, obj.docstring.value)
            obj.docstring.value = text.replace("``", "`")
