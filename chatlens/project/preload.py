"""Imported by the stage pool's fork server before it forks workers (see
:func:`chatlens.engines.local.map_batches`): the stage functions' modules and enrichment's
models, loaded once, in memory every worker shares (copy on write), instead of once per worker
(about 2.5 CPU seconds each)."""

from __future__ import annotations

import chatlens.project.process  # noqa: F401  (the stage functions and all they import)
from chatlens.enrich.pipeline import warm_up

warm_up()
