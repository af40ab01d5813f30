"""Coding: codebook measures applied to enriched messages (see :func:`code_table`)."""

from chatlens.code.compiled import CompiledCodebook, compile_codebook
from chatlens.code.stage import CODE_SCHEMA, code_table

__all__ = ["CODE_SCHEMA", "CompiledCodebook", "code_table", "compile_codebook"]
