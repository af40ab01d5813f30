"""Build the self-contained report: data from the project (read-only), rendered to one HTML
file with inline CSS, inline SVG charts and inline JSON data, and a Content-Security-Policy that
forbids every request (``default-src 'none'``). Nothing is written to the project.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from chatlens import __version__
from chatlens.errors import ChatlensError, UsageError
from chatlens.present.charts import band_chart, interval_bars, small_note, topic_charts
from chatlens.present.estimates import band_points, dated, estimates, warnings_of
from chatlens.present.messages import evidence_sample, overview
from chatlens.project import Project
from chatlens.report.markdown import to_html
from chatlens.store.core import Store
from chatlens.store.views import EvidenceQuery

HERE = Path(__file__).parent
WEB_STATIC = HERE.parent / "web" / "static"
SECTIONS = ("summary", "codebook", "models", "agreement", "estimates", "claims", "topics",
            "methods", "evidence", "manifest")
#: Headless Chromium with networking off: the report is a local file and needs nothing else.
#: Name resolution maps every host to nothing, every request goes to a proxy that does not
#: exist (loopback included), and the background services that phone home are disabled.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://0.0.0.0:9",
                 "--proxy-bypass-list=<-loopback>", "--dns-prefetch-disable",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                 "--disable-breakpad", "--disable-default-apps", "--disable-extensions",
                 "--disable-sync", "--no-pings", "--metrics-recording-only",
                 "--safebrowsing-disable-auto-update", "--no-first-run",
                 "--disable-features=NetworkPrediction,OptimizationHints,Translate,"
                 "MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater"]
FALLBACK_METHODS = """\
Every share is estimated from a random **audit sample** coded by people. With model scores on
every message, the **prediction-powered** estimate adds the model's average to the average
correction measured on the audit sample: unbiased whatever the model's errors, and narrower than
the audit alone when the model is good. Without an audit sample, **quantification** adjusts the
model's counts with its error rates measured on labels from other data. The **naive**
classify-and-count figure ignores the model's errors and is shown only for reference.
"""


def methods_text() -> str:
    """``docs/methods.md``: packaged beside this module in a wheel (see pyproject's
    force-include), read from the source tree in a checkout; else a short built-in text."""
    for candidate in (HERE / "methods.md", HERE.parents[1] / "docs" / "methods.md"):
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8")
            return "\n".join(x for x in text.splitlines() if not x.startswith("# "))
    return FALLBACK_METHODS


def llm_cards(p: Project, cb: Any) -> list[dict[str, str]]:
    from chatlens.report.llmcard import llm_cards as cards

    return cards(p, cb)


def _model_cards(root: Path, cb: Any) -> list[dict[str, str]]:
    from chatlens.train import SHIPPED_MODELS

    names = {sc.model for m in cb.measures for sc in m.scorers if sc.type == "model"}
    cards: dict[str, str] = {}
    for d in sorted((root / "models").glob("*/MODEL_CARD.md")):
        cards[d.parent.name] = d.read_text(encoding="utf-8")
    for name in sorted(names - set(cards)):
        for base in (root / "models", SHIPPED_MODELS):
            card = base / name / "MODEL_CARD.md"
            if card.is_file():
                cards[name] = card.read_text(encoding="utf-8")
                break
    return [{"name": k, "card": v} for k, v in cards.items()]


def _evidence(p: Project, measure: str, value: str, n: int) -> list[dict[str, Any]]:
    return evidence_sample(p, EvidenceQuery(measure, value), n)


def _masked_runs(p: Project) -> list[dict[str, Any]]:
    """The runs log without 1:1 partners' names, phone numbers or e-mails (in source paths)."""
    masker = p.masker()
    runs = p.runs(50)
    for r in runs:
        for k in ("params", "manifest"):
            if isinstance(r.get(k), str):
                r[k] = masker.loc(r[k])
    return runs


def _measure(p: Project, m: Any, bucket: str, n_evidence: int) -> dict[str, Any]:
    masker = p.masker()
    titles = {c["chat_key"]: c["title"] for c in p.store.chats()}
    out: dict[str, Any] = {"id": m.id, "question": m.question, "values": []}
    values = [m.positive_label()] if m.type == "binary" else m.labels
    # one estimate per grouping, for every value at once (the frame is read once, not per value)
    rows = {by: estimates(p, m.id, by=by) for by in (None, bucket, "chat")}
    time_rows, undated = dated(rows[bucket])
    for v in values:
        overall = next(r for r in rows[None] if r.value == v)
        time = [r for r in time_rows if r.value == v]
        chat = [r for r in rows["chat"] if r.value == v]
        shown_chats = [r.as_dict() for r in chat]
        masker.groups(shown_chats, titles)
        shown_titles = {key: masker.shown(key, title) for key, title in titles.items()}
        item: dict[str, Any] = {
            "value": v, "overall": overall.as_dict(),
            "time": [r.as_dict() for r in time], "chat": shown_chats,
            "undated": undated,
            "warnings": warnings_of([overall], [r for r in rows[bucket] if r.value == v], chat),
            "time_svg": None, "chat_svg": None, "time_note": None, "chat_note": None,
            "evidence": _evidence(p, m.id, v, n_evidence) if n_evidence else []}
        if overall.corrected:  # no human labels: no interval chart of the naive figure
            tp, cp = band_points(time), band_points(chat, shown_titles)
            item |= {"time_svg": band_chart(tp, f"{m.id}={v} per {bucket}", overall.method),
                     "chat_svg": interval_bars(cp, f"{m.id}={v} by chat"),
                     "time_note": small_note(tp, bucket), "chat_note": small_note(cp, "chat")}
        out["values"].append(item)
    return out


def report_data(root: str | Path, claims: str | None = None, codebook: str | None = None,
                n_evidence: int = 5) -> dict[str, Any]:
    """Everything the report shows, read from the project without writing to it."""
    from chatlens.project.claims import check_claims

    root = Path(root)
    p = Project(Store.open(root, read_only=True), codebook)
    with p:
        cb, source = p.codebook()
        ov = overview(p)
        bucket = ov["bucket"]  # the overview's time bucket: one rule, computed once
        measures = []
        for m in cb.measures:
            try:
                measures.append(_measure(p, m, bucket, n_evidence))
            except ChatlensError as exc:
                measures.append({"id": m.id, "question": m.question, "values": [],
                                 "error": str(exc)})
        claim_result = None
        if claims:
            try:
                claim_result = check_claims(p, claims)
                titles = {c["chat_key"]: c["title"] for c in p.store.chats()}
                for c in claim_result.get("results", []):
                    p.masker().groups(c.get("estimates", []), titles)
            except UsageError as exc:
                claim_result = {"results": [], "error": str(exc), "claims_file": claims}
        from chatlens.project.topics import fit_topics

        topics = fit_topics(p)
        data: dict[str, Any] = {
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "version": __version__, "project": str(root.resolve()),
            "overview": ov, "codebook": cb.resolved(), "codebook_source": source,
            "codebook_hash": cb.hash(),
            "models": _model_cards(root, cb) + llm_cards(p, cb),
            "agreement": p.agreement(), "measures": measures, "bucket": bucket,
            "claims": claim_result, "runs": _masked_runs(p), "topics": topics,
            "topic_charts": topic_charts(topics),
            "samples": p.labels().samples(),
        }
    sources: list[dict[str, Any]] = data["overview"]["sources"]
    data["manifest"] = {
        "chatlens_version": __version__, "generated": data["generated"],
        "project": data["project"], "codebook": source, "codebook_hash": data["codebook_hash"],
        "claims": claims, "evidence_per_value": n_evidence,
        "sources": [{"path": s["path"], "sha256": s["sha256"], "format": s["format"],
                     "stored": s["n_stored"]} for s in sources],
        "command": " ".join(["chatlens report", f"--project {data['project']}",
                             *([f"--codebook {codebook}"] if codebook else []),
                             *([f"--claims {claims}"] if claims else []),
                             f"--evidence {n_evidence}", "-o report.html"]),
    }
    return data


def _json_default(o: Any) -> Any:
    if isinstance(o, Markup):
        return None
    return str(o)


def render(data: dict[str, Any]) -> str:
    env = Environment(loader=FileSystemLoader([HERE / "templates", HERE.parent / "web" /
                                               "templates"]),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: "—" if v is None else f"{int(v):,}"
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str)
    css = (WEB_STATIC / "app.css").read_text(encoding="utf-8")
    css += (HERE / "templates" / "report.css").read_text(encoding="utf-8")
    slim = {k: v for k, v in data.items()
            if k not in ("overview", "runs", "measures", "topics", "topic_charts")}
    model = data["topics"]
    slim["topics"] = {"sample_size": model.sample_size, "left_out": model.left_out,
                      "languages": model.languages, "topics": [
                          {"id": t.id, "name": t.name, "lang": t.lang, "size": t.size,
                           "pct": t.pct, "terms": t.terms, "mixed": t.mixed}
                          for t in model.topics]}
    slim["estimates"] = [{"measure": m["id"], "values": [
        {k: v[k] for k in ("value", "overall", "time", "chat", "undated", "warnings")}
        for v in m["values"]]}
        for m in data["measures"]]
    blob = json.dumps(slim, ensure_ascii=False, default=_json_default)
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return env.get_template("report.html").render(
        d=data, css=Markup(css.replace("</", "<\\/")), data_json=Markup(blob),
        methods=to_html(methods_text(), shift=1), sections=SECTIONS)


def build_report(root: str | Path, output: str | Path, claims: str | None = None,
                 codebook: str | None = None, n_evidence: int = 5) -> Path:
    """Write the report for the project at ``root`` to ``output``; returns its path."""
    html = render(report_data(root, claims, codebook, n_evidence))
    out = Path(output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: str | Path, pdf: str | Path, timeout: float = 120) -> Path:
    """Print the HTML report to PDF with headless Chromium (no network, temporary profile)."""
    exe = find_chromium()
    if exe is None:
        raise UsageError("--pdf needs Chromium (e.g. `apt-get install chromium`); the HTML "
                         "report was written.")
    pdf = Path(pdf).resolve()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_ARGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={pdf}", Path(html).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    if proc.returncode != 0 or not pdf.exists():
        raise ChatlensError(f"Chromium could not print the PDF: {proc.stderr.strip()[-500:]}")
    return pdf
