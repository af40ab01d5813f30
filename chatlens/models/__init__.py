"""Models that ship with chatlens (package data): one folder per model, see docs/models.md."""
