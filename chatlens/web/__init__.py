"""The local dashboard (``chatlens serve``); see :mod:`chatlens.web.app` and docs/dashboard.md."""

from __future__ import annotations
