"""Estimates on the dashboard and in the report when labels are missing or thin: claims without
an estimate, measures without human labels, undated messages and small groups in charts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install uvicorn)")
pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette)")

from chatlens import Project
from chatlens.present.charts import BandPoint, band_chart, interval_bars, small_note
from chatlens.report import build_report
from chatlens.store.labels import NewLabel
from tests.helpers import telegram_export
from tests.test_web import Server, request, start

CLAIMS = """\
codebook: builtin:exodus-2022
claims:
  - id: z_audit_only
    statement: Z talk is common (audit only).
    measure: z_symbol
    value: "yes"
    method: audit
    compare: share > 0.1
  - id: z_auto
    statement: Z talk is common.
    measure: z_symbol
    value: "yes"
    compare: share > 0.1
  - id: border_common
    statement: Border talk is common.
    measure: border_crossing
    value: "yes"
    compare: share > 0.1
"""
N_UNDATED = 5


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 dated messages and 5 undated ones; only border_crossing has an audit sample."""
    base = tmp_path_factory.mktemp("thin")
    texts = ["граница очередь на Верхнем Ларсе", "мобилизация повестка", "привет всем",
             "как дела у всех"] * 30
    src = telegram_export(base / "tg.json", texts)
    undated = base / "undated.jsonl"
    undated.write_text("".join(json.dumps({"text": "граница очередь Ларс", "author": "a",
                                           "chat": "nodate", "message_id": str(i)},
                                          ensure_ascii=False) + "\n"
                               for i in range(N_UNDATED)), encoding="utf-8")
    root = base / "proj"
    with Project.init(root) as p:
        p.ingest([src])
        p.ingest([undated], format="jsonl")
        p.code("builtin:exodus-2022")
        sample = p.sample("border_crossing", "audit", 60, seed=1)
        labels = p.labels()
        items = labels.sample_items(sample["sample_id"])
        texts_by_uid = dict(p.store.con.execute("SELECT uid, text FROM messages").fetchall())
        labels.add_labels(
            NewLabel(uid=i["uid"], codebook="exodus-2022", measure="border_crossing",
                     value="yes" if "граница" in texts_by_uid[i["uid"]] else "no",
                     annotator="tester", sample_id=sample["sample_id"], sample_kind="audit")
            for i in items)
    (base / "claims.yaml").write_text(CLAIMS, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def server(thin: Path) -> Iterator[Server]:
    s = start(thin, claims=str(thin.parent / "claims.yaml"))
    yield s
    s.stop()


def _text(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", " [chart] ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _claim(html: str, cid: str) -> str:
    m = re.search(rf'<section class="claim[^"]*" id="claim-{cid}">(.*?)</section>', html, re.S)
    assert m, cid
    return _text(m.group(1))


def test_claim_without_estimate_says_no_estimate_yet(server: Server) -> None:
    status, _, html = request(server.url + "/claims")
    assert status == 200, html[-2000:]
    audit_only = _claim(html, "z_audit_only")  # the estimate failed: no audit labels
    assert "no estimate yet — label an audit sample" in audit_only
    assert "No audit labels" in audit_only
    naive = _claim(html, "z_auto")  # only the naive figure: not shown as an estimate
    assert "no estimate yet — label an audit sample" in naive
    assert "naive 0.0% (ignores classifier error)" in naive
    assert "[0.0%" not in naive
    border = _claim(html, "border_common")
    assert "no estimate yet" not in border and "labelled" in border


def test_measure_without_labels_shows_no_interval_chart(server: Server) -> None:
    status, _, html = request(server.url + "/measures/z_symbol")
    assert status == 200
    assert 'id="no-labels"' in html and "No human labels yet" in html
    assert "<svg" not in html and "class=\"band\"" not in html
    assert "naive classify-and-count" in _text(html)
    assert "95% interval" not in html


def test_month_view_leaves_out_undated_messages_and_says_how_many(server: Server) -> None:
    status, _, html = request(server.url + "/measures/border_crossing")
    assert status == 200
    assert "(none)" not in html  # undated messages are not a time bucket
    assert f"{N_UNDATED} undated messages not in the weekly view" in _text(html)
    assert 'class="band"' in html  # the one week has enough labels for its band


def test_band_chart_draws_small_groups_hollow_without_band() -> None:
    points = [BandPoint("2022-01", 0.2, 0.1, 0.3, 0.25, False, 40),
              BandPoint("2022-02", 0.3, 0.0, 1.0, 0.2, True, 1),
              BandPoint("2022-03", 0.25, 0.15, 0.35, 0.2, False, 45),
              BandPoint("2022-04", 0.22, 0.12, 0.32, 0.2, False, 50)]
    svg = str(band_chart(points, "t", "ppi"))
    assert svg.count('class="small"') == 1
    assert "too few labels for an interval (1 audit labels)" in svg
    # the small month's 0-100% interval is not drawn and does not stretch the axis
    ticks = [int(t) for t in re.findall(r'font-size="11">(\d+)%</text>', svg)]
    assert ticks and max(ticks) < 50
    polygons = re.findall(r'<polygon class="band" points="([^"]*)"', svg)
    assert len(polygons) == 1 and len(polygons[0].split()) == 4  # months 3-4 only
    assert svg.count('<line class="band"') == 1  # month 1 alone: a whisker
    assert svg.count('class="estimate"') == 1
    note = small_note(points, "month")
    assert note and note.startswith("1 of 4 months have fewer than 30 audit labels")
    assert small_note(points[:1], "month") is None
    bars = str(interval_bars(points, "t"))
    assert bars.count('class="small"') == 1


def test_charts_draw_the_two_settlements_of_ties_as_a_range() -> None:
    """A group whose coder ties are counted both ways has two points: drawn as a dash between
    them and named as a range, never as the midpoint alone."""
    tied = BandPoint("2022-02", 0.3, 0.1, 0.5, 0.2, False, 40, (0.2, 0.4))
    points = [BandPoint("2022-01", 0.2, 0.1, 0.3, 0.25, False, 40), tied]
    for svg in (str(band_chart(points, "t", "ppi")), str(interval_bars(points, "t"))):
        assert svg.count('class="settlements"') == 1
        assert "2022-02: 20%–40% [10%, 50%]" in svg and "2022-02: 30%" not in svg


def test_report_no_estimate_yet_and_undated(thin: Path) -> None:
    out = build_report(thin, thin.parent / "report.html",
                       claims=str(thin.parent / "claims.yaml"))
    html = out.read_text(encoding="utf-8")
    text = _text(html)
    assert "no estimate yet — label an audit sample" in text
    assert "No human labels yet: no estimate and no interval for z_symbol = yes" in text
    assert f"{N_UNDATED} undated messages not in the weekly view" in text
    m = re.search(r'<h3 id="measure-z_symbol">(.*?)<h3 id=', html, re.S)
    assert m and "<svg" not in m.group(1)
    blob = re.search(r'id="report-data">(.*?)</script>', html, re.S)
    assert blob
    data = json.loads(blob.group(1))
    border = next(e for e in data["estimates"] if e["measure"] == "border_crossing")
    assert border["values"][0]["undated"] == N_UNDATED
    assert all(r["group"] != "(none)" for r in border["values"][0]["time"])
