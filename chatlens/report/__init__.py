"""``chatlens report``: one self-contained HTML file (and optionally a PDF) for a project."""

from __future__ import annotations

from chatlens.report.build import SECTIONS, build_report, print_pdf, report_data

__all__ = ["SECTIONS", "build_report", "print_pdf", "report_data"]
