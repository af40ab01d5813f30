"""The self-contained HTML report: structure snapshot, no external references, escaping, PDF."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chatlens import Project
from chatlens.demo import run_demo
from chatlens.report import SECTIONS, build_report, print_pdf

SNAPSHOT = Path(__file__).parent / "snapshots" / "report_structure.json"
XSS_TEXT = ('Смотрите <script>alert(1)</script> и "><img src=x onerror=alert(1)> '
            "ещё <a href=\"javascript:alert(1)\">ссылка</a> javascript:alert(1) "
            "звоните +7 999 123-45-67 или пишите ivan@example.com граница очередь")


def make_project(root: Path, n_messages: int = 150) -> Path:
    """A demo project plus one hostile message (HTML/JS payloads, a phone and an e-mail)."""
    run_demo(root, n_messages=n_messages, seed=7)
    rows = [{"text": XSS_TEXT, "ts": "2022-09-23T10:00:00Z", "author": "attacker",
             "chat": "xss-test", "message_id": "1"},
            {"text": "=HYPERLINK(\"http://evil\") граница", "ts": "2022-09-23T10:05:00Z",
             "author": "attacker", "chat": "xss-test", "message_id": "2"}]
    src = root / "hostile.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                   encoding="utf-8")
    with Project.open(root) as p:
        p.ingest([src], format="jsonl")
        p.code("builtin:exodus-2022")
    return root


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict[str, str]] = []
        self.external: list[str] = []
        self._in_h2 = False
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and "part" in (a.get("class") or ""):
            self.sections.append({"id": a.get("id") or "", "heading": ""})
        if tag == "h2" and self.sections:
            self._in_h2 = True
        if tag == "script":
            self.scripts.append(a)
        for key in ("src", "href", "action", "data", "poster", "srcset"):
            v = (a.get(key) or "").strip().lower()
            if v and not v.startswith("#") and not v.startswith("data:"):
                self.external.append(f"{tag} {key}={v}")
        if tag == "link":
            self.external.append(f"link {a}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2 and self.sections:
            self.sections[-1]["heading"] += data.strip()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = make_project(tmp_path_factory.mktemp("report") / "proj")
    out = build_report(root, root / "report.html", claims="builtin:exodus-2022")
    return out, out.read_text(encoding="utf-8")


def test_report_structure_matches_snapshot(report: tuple[Path, str]) -> None:
    parser = _Structure()
    parser.feed(report[1])
    assert [s["id"] for s in parser.sections] == list(SECTIONS)
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert parser.sections == expected["sections"], (
        "report structure changed; if intended, update tests/snapshots/report_structure.json")


def test_report_is_self_contained(report: tuple[Path, str]) -> None:
    parser = _Structure()
    parser.feed(report[1])
    assert parser.external == []
    assert all(s.get("type") == "application/json" and not s.get("src")
               for s in parser.scripts)
    assert "default-src 'none'" in report[1]
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", report[1])
    assert "@import" not in report[1]


def test_report_contents_escaped_and_masked(report: tuple[Path, str]) -> None:
    html = report[1]
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "+7 999 123-45-67" not in html and "ivan@example.com" not in html
    assert "attacker" not in html  # authors appear only as pseudonyms
    for needle in ("ppi", "naive", "Wilson", "chatlens report --project"):
        assert needle in html


def test_report_data_blob_is_valid_json(report: tuple[Path, str]) -> None:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                  report[1], re.S)
    assert m is not None
    data = json.loads(m.group(1))
    assert {"manifest", "estimates", "codebook"} <= set(data)
    assert data["manifest"]["codebook_hash"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed "
                    "(apt-get install chromium)")
def test_report_pdf(report: tuple[Path, str], tmp_path: Path) -> None:
    pdf = print_pdf(report[0], tmp_path / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
