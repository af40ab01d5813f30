"""How ingest turns a batch's originals into the Arrow column it stores."""

from __future__ import annotations

from chatlens.ingest.rows import raw_column


def test_originals_read_as_bytes_are_stored_as_the_same_text() -> None:
    raws: list[str | bytes] = ['  {\n   "text": "Граница"\n  }'.encode(), b"{}", "😀".encode()]
    assert raw_column(raws).to_pylist() == ['  {\n   "text": "Граница"\n  }', "{}", "😀"]


def test_an_original_that_is_not_utf8_is_stored_with_replacement_characters() -> None:
    """Only the damaged record changes; the rest of its batch is stored as read."""
    col = raw_column([b"ok", b"bad \xff\xfe end", "text"])
    assert col.to_pylist() == ["ok", "bad \ufffd\ufffd end", "text"]


def test_an_empty_batch_has_an_empty_column() -> None:
    assert raw_column([]).to_pylist() == []
