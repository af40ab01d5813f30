"""Presentation shared by the dashboard and the report: charts and estimates flattened for
templates."""
