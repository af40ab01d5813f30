"""mkdocs hook: generated references, and nav entries for pages that are not there yet.

* A page's ``<!-- chatlens:generate NAME -->`` marker is replaced with
  ``chatlens.docgen.generate(NAME)`` (CLI help, codebook and claims fields, store schema,
  settings), so the site is always built from the code.
* ``cli.md`` is rebuilt from ``--help`` at every build, whatever the checked-in copy says.
* Nav entries whose page does not exist (yet) are dropped instead of failing the strict build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatlens.docgen import expand, generate


def _prune(items: list[Any], docs: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                value = _prune(value, docs)
                if value:
                    kept.append({title: value})
            elif "://" in str(value) or (docs / str(value)).is_file():
                kept.append(item)
        elif "://" in str(item) or (docs / str(item)).is_file():
            kept.append(item)
    return kept


def on_config(config: Any, **kwargs: Any) -> Any:
    if config.get("nav"):
        config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri == "cli.md":
        return str(generate("cli"))
    return str(expand(markdown))
