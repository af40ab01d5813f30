"""``chatlens demo``: a synthetic corpus in real export formats, run through the real pipeline.

Everything here is SYNTHETIC: invented Russian-language messages of the kind found in 2022
emigration chats, written by templates with a fixed seed. Each message's planted topics are saved
in ``truth.json`` beside the exports so later stages can check their estimates against them.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chatlens.project import Project
from chatlens.store import is_project

START = datetime(2022, 9, 21, 6, 0, tzinfo=UTC)  # the day mobilization was announced

# (topic, text templates); {c} country, {p} checkpoint, {h} hours, {d} document
TEMPLATES: dict[str, list[str]] = {
    "border_crossing": [
        "Кто сейчас на Верхнем Ларсе? Какая очередь на границе?",
        "Стоим на {p} уже {h} часов, очередь почти не двигается",
        "На границе спрашивали про военный билет, пропустили без вопросов",
        "Прошли границу за {h} часов, пешком быстрее чем на машине",
        "Подскажите, на {p} пускают пешком или только на машине?",
        "Погранцы на выезде проверяют повестки, будьте готовы",
    ],
    "mobilization": [
        "Брату принесли повестку прямо на работу",
        "Военкомат раздаёт повестки у метро, осторожно",
        "Есть ли отсрочка от мобилизации для айтишников?",
        "Частичная мобилизация, а забирают всех подряд",
    ],
    "destination": [
        "Едем в {c}, кто уже там — как с жильём?",
        "В {c} можно открыть карту по загранпаспорту?",
        "Переехали в {c} на прошлой неделе, всё спокойно",
        "Что лучше: {c} или Казахстан? Думаем куда ехать",
    ],
    "advice_request": [
        "Подскажите, нужен ли загранпаспорт для въезда в {c}?",
        "Посоветуйте, где снять квартиру в Тбилиси недорого",
        "Кто знает, работают ли российские карты в {c}?",
    ],
    "z_symbol": [
        "Снимайте Z с машин перед границей, местные не оценят",
        "У соседа на машине до сих пор буква Z, позорище",
        "Кто-то писал «СВО» вместо войны, смешно",
    ],
    "host_hostility": [
        "Местные какие-то хамы, понаехали тут мы, а недовольны они",
        "Грузины нас тут не любят, ну и пусть терпят",
    ],
    "other": [
        "Всем привет! Спасибо за чат",
        "Где можно поменять рубли на лари?",
        "Сегодня очень жарко",
        "Кто-нибудь видел кота у кафе?",
        "Ссылка на карту обменников: https://example.org/map",
        "👍👍",
        "Доброе утро",
    ],
}
COUNTRIES = ["Грузию", "Казахстан", "Армению", "Киргизию", "Монголию", "Турцию", "Сербию"]
CHECKPOINTS = ["Верхнем Ларсе", "КПП Кяхта", "границе с Казахстаном", "Торфяновке"]
WEIGHTS = {"border_crossing": 0.25, "mobilization": 0.12, "destination": 0.15,
           "advice_request": 0.12, "z_symbol": 0.04, "host_hostility": 0.03, "other": 0.29}
NAMES = ["Алексей", "Мария", "Дмитрий", "Ольга", "Иван", "Сергей", "Анна", "Павел", "Ксения",
         "Никита", "Егор", "Татьяна"]


def _message(rng: random.Random) -> tuple[str, str]:
    topic = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    text = rng.choice(TEMPLATES[topic]).format(
        c=rng.choice(COUNTRIES), p=rng.choice(CHECKPOINTS), h=rng.randint(2, 30),
    )
    return topic, text


def telegram_export(path: Path, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """A Telegram Desktop single-chat JSON export, in the exporter's layout."""
    truth = []
    messages: list[dict[str, Any]] = [{
        "id": 1, "type": "service", "date": START.strftime("%Y-%m-%dT%H:%M:%S"),
        "date_unixtime": str(int(START.timestamp())), "actor": "Админ",
        "actor_id": "user100", "action": "create_group", "title": "Ларс [SYNTHETIC]",
        "members": [], "text": "", "text_entities": [],
    }]
    t = START
    for i in range(2, n + 2):
        t += timedelta(seconds=rng.randint(30, 3000))
        topic, text = _message(rng)
        uid = rng.randrange(len(NAMES))
        msg: dict[str, Any] = {
            "id": i, "type": "message", "date": t.strftime("%Y-%m-%dT%H:%M:%S"),
            "date_unixtime": str(int(t.timestamp())), "from": NAMES[uid],
            "from_id": f"user{1000 + uid}",
        }
        if i > 3 and rng.random() < 0.15:
            msg["reply_to_message_id"] = rng.randint(2, i - 1)
        if "https://" in text:
            head, url = text.split("https://")
            msg["text"] = [head, {"type": "link", "text": "https://" + url}]
            msg["text_entities"] = [{"type": "plain", "text": head},
                                    {"type": "link", "text": "https://" + url}]
        else:
            msg["text"] = text
            msg["text_entities"] = [{"type": "plain", "text": text}]
        messages.append(msg)
        truth.append({"text": text, "topic": topic})
    doc = {"name": "Ларс: граница и очереди [SYNTHETIC]", "type": "private_supergroup",
           "id": 1000000001, "messages": messages}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth


def whatsapp_export(path: Path, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """A WhatsApp Android (24 h) chat export."""
    truth = []
    t = datetime(2022, 9, 25, 9, 0)
    lines = [f"{t:%d/%m/%Y, %H:%M} - Messages and calls are end-to-end encrypted. No one "
             "outside of this chat, not even WhatsApp, can read or listen to them.",
             f'{t:%d/%m/%Y, %H:%M} - Member 01 created group "Релокация Тбилиси [SYNTHETIC]"']
    for _ in range(n):
        t += timedelta(seconds=rng.randint(60, 4000))
        topic, text = _message(rng)
        who = f"Member {rng.randint(1, 9):02d}"
        if rng.random() < 0.05:
            text = f"{text}\nи ещё вопрос: где купить симку?"
        lines.append(f"{t:%d/%m/%Y, %H:%M} - {who}: {text}")
        truth.append({"text": text, "topic": topic})
    lines.append(f"{t:%d/%m/%Y, %H:%M} - Member 03: <Media omitted>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truth


DEMO_MEASURES = ("border_crossing", "mobilization", "z_symbol")
SIMULATED_CODER = "demo-coder (simulated from the planted topics)"


def _simulated_audit(proj: Project, measure: str, topic_of: dict[str, str], seed: int,
                     n: int = 150) -> dict[str, Any]:
    """Draw an audit sample, let a simulated coder label it from the planted topics, estimate,
    and compare with the true share in the population."""
    from chatlens.store.labels import NewLabel
    from chatlens.store.stages import population_frame

    frame = population_frame(proj.store, "exodus-2022", measure).to_pylist()
    truth = {r["uid"]: topic_of.get(r["text"]) == measure for r in frame}
    sample = proj.sample(measure, "audit", min(n, len(frame)), seed=seed)
    proj.labels().add_labels(
        NewLabel(uid=i["uid"], codebook="exodus-2022", measure=measure,
                 value="yes" if truth[i["uid"]] else "no", annotator=SIMULATED_CODER,
                 sample_id=sample["sample_id"], sample_kind="audit")
        for i in proj.labels().sample_items(sample["sample_id"]))
    (row,) = proj.estimate(measure)
    true_share = sum(truth.values()) / len(truth)
    est = row.estimate
    return {"measure": measure, "value": row.value, "true_share": true_share,
            "point": est.point, "lower": est.lower, "upper": est.upper, "method": est.method,
            "n_labelled": est.n_labelled, "N": est.N_population, "naive": row.naive.point,
            "covered": est.lower <= true_share <= est.upper}


def run_demo(root: str | Path, n_messages: int = 400, seed: int = 7) -> dict[str, Any]:
    """Write the synthetic exports under ``root/demo-data``, ingest them, return a summary."""
    root = Path(root)
    rng = random.Random(seed)
    data = root / "demo-data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "README.txt").write_text(
        "SYNTHETIC DATA generated by `chatlens demo`: invented messages, no real person or chat.\n",
        encoding="utf-8",
    )
    tg = data / "telegram_lars_synthetic" / "result.json"
    tg.parent.mkdir(exist_ok=True)
    wa = data / "WhatsApp Chat with Релокация Тбилиси SYNTHETIC.txt"
    truth = telegram_export(tg, n_messages, rng) + whatsapp_export(wa, n_messages, rng)
    (data / "truth.json").write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    proj = Project.open(root) if is_project(root) else Project.init(root)
    with proj:
        report = proj.ingest([tg, wa], tz="Asia/Tbilisi")
        coded = proj.code("builtin:exodus-2022")
        estimates = [_simulated_audit(proj, m, {t["text"]: t["topic"] for t in truth}, seed)
                     for m in DEMO_MEASURES]
        status = proj.status()
    from chatlens.report import build_report

    report_path = build_report(root, root / "report.html", claims="builtin:exodus-2022")
    return {
        "project": str(root.resolve()),
        "report": str(Path(report_path).resolve()),
        "synthetic": True,
        "files": [
            {"path": str(tg), "format": "telegram-json", "messages": n_messages + 1},
            {"path": str(wa), "format": "whatsapp", "messages": n_messages + 3},
        ],
        "ingest": report.as_dict(),
        "code": coded.as_dict(),
        "estimates": estimates,
        "status": {k: status[k] for k in ("messages", "chats", "sources", "quarantined",
                                          "authors", "first", "last")},
    }
