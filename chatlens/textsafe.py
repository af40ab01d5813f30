"""Make untrusted text safe to show: in a terminal now, in HTML and CSV where they are written."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

# C0/C1 controls (except tab and newline), DEL, and bidi overrides/isolates that can disguise text.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str | None, single_line: bool = False) -> str:
    """Replace control and bidi-override characters with visible escapes (``\\x1b``)."""
    if text is None:
        return ""
    out = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                      else f"\\u{ord(m.group()):04x}", text)
    if single_line:
        out = out.replace("\n", "⏎ ").replace("\t", " ")
    return out


#: Cell beginnings a spreadsheet would execute as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A CSV cell that spreadsheets show as text: an apostrophe before a formula prefix (and
    before an apostrophe that precedes one, so :func:`csv_unsafe` restores the original)."""
    cell = "" if value is None else str(value)
    if cell.startswith(FORMULA_PREFIXES) or (
            len(cell) > 1 and cell[0] == "'" and cell[1] in (*FORMULA_PREFIXES, "'")):
        return "'" + cell
    return cell


def csv_safe_sql(col: str) -> str:
    """:func:`csv_safe` as a SQL expression over column ``col`` (for exports written by DuckDB),
    named after the column; its pattern is built from :data:`FORMULA_PREFIXES`."""
    cls = "".join({"\t": r"\t", "\r": r"\r", "-": r"\-"}.get(c, c) for c in FORMULA_PREFIXES)
    pattern = f"^(?:[{cls}]|''[{cls}''])"  # '' is one quote inside the SQL string
    return (f"CASE WHEN regexp_matches({col}, '{pattern}') THEN '''' || {col} "
            f"ELSE {col} END AS {col}")


def csv_unsafe(cell: str) -> str:
    """Inverse of :func:`csv_safe`."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in (*FORMULA_PREFIXES, "'"):
        return cell[1:]
    return cell


# -- personal data in text: phone numbers, e-mails, names in service texts --------------------

_URL = r"(?:https?://|www\.)[^\s<>\"'`]+|(?<![\w.@/-])[\w-]+(?:\.[\w-]+)+/[^\s<>\"'`]*"
_EMAIL = r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_PHONE = r"(?:(?<!\+)\+|(?<![\w+]))\d[\d \t\u00a0().-]*"  # "+" may follow a word
_PII = re.compile(f"(?P<url>{_URL})|(?P<email>{_EMAIL})|(?P<phone>{_PHONE})")
EMAIL_RE = re.compile(_EMAIL)  # an e-mail address (masking; language ID leaves them out)
_PHONE_LINK = re.compile(r"(?:wa\.me/|whatsapp\.com/send/?\?phone=|t\.me/\+|chat\?number=)\+?\d+",
                         re.IGNORECASE)
_PHONE_LINK_DIGITS = re.compile(r"\+?\d+$")
#: Digit runs that are dates or year ranges, not phone numbers.
_NOT_PHONE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{2,4}|\d{4} ?[-–] ?\d{4}")
MIN_PHONE_DIGITS = 7
#: RE2 (Arrow) pre-test: a text can hold an e-mail or a phone number only if it matches this.
_MAYBE_PII = r"@|\d[\d \t\x{a0}().-]{7,}"


def _phone(run: str, after: str) -> str:
    body = run.rstrip(" \t\u00a0().-")
    tail = run[len(body):]
    # a digit run followed by a letter is an identifier (abc123...), as is a short one
    if after.isalnum() and not tail:
        return run
    digits = sum(c.isdigit() for c in body)
    if digits < MIN_PHONE_DIGITS or len(body) < 9 or _NOT_PHONE.fullmatch(body):
        return run
    return "[phone]" + tail


def _url(url: str) -> str:
    url = EMAIL_RE.sub("[email]", url)
    return _PHONE_LINK.sub(lambda m: _PHONE_LINK_DIGITS.sub("[phone]", m.group()), url)


def mask_pii(text: str | None) -> str:
    """Mask phone numbers and e-mail addresses (for displays, exports, evidence and reports);
    URLs are kept. Linear in the length of ``text``."""
    if not text:
        return ""
    out: list[str] = []
    pos = 0
    for m in _PII.finditer(text):
        a, b = m.span()
        out.append(text[pos:a])
        kind = m.lastgroup
        if kind == "url":
            out.append(_url(m.group()))
        elif kind == "email":
            out.append("[email]")
        else:
            out.append(_phone(m.group(), text[b:b + 1]))
        pos = b
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


# -- names in service texts --------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")
#: Capitalised words that begin service texts without being names (WhatsApp, Telegram, Viber).
_TEMPLATE_WORDS = frozenset({
    "you", "your", "messages", "message", "this", "the", "group", "channel", "tap", "whatsapp",
    "telegram", "viber", "security", "missed", "waiting", "pinned", "deleted", "voice", "video",
    "call", "calls", "chat", "new", "photo", "disappearing", "admin", "admins", "only", "вы",
    "ваш", "ваша", "сообщения", "сообщение", "этот", "эта", "группа", "канал", "звонок",
    "пропущенный", "удалено", "новый", "ви", "повідомлення", "цей", "ця", "група", "дзвінок"
})
_MAX_NAME_WORDS = 4


def _norm(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def first_words(names: dict[str, str]) -> frozenset[str]:
    """The first words of ``names`` (normalised), which :func:`mask_service_names` looks for."""
    return frozenset(n.split(" ", 1)[0] for n in names)


def mask_service_names(text: str, names: dict[str, str] | None = None,
                       first: frozenset[str] | None = None) -> str:
    """Replace display names in a service text ("Anna added Bob"): a known name (``names``
    maps normalised display names to pseudonyms; ``first`` is their :func:`first_words`) by its
    pseudonym, any other run of capitalised words (and the numbers after them: "Member 12") by
    ``[name]``. Linear."""
    if names and first is None:
        first = first_words(names)
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    out: list[str] = []
    pos = i = 0
    while i < len(words):
        a, _, w = words[i]
        j, repl = i, None
        if names and first and w.casefold() in first:
            for k in range(min(len(words), i + _MAX_NAME_WORDS) - 1, i - 1, -1):
                if k > i and not text[words[k - 1][1]:words[k][0]].isspace():
                    continue
                found = names.get(_norm(text[a:words[k][1]]))
                if found:
                    j, repl = k, found
                    break
        if repl is None and w[0].isupper() and w.casefold() not in _TEMPLATE_WORDS:
            while (j + 1 < len(words) and text[words[j][1]:words[j + 1][0]] == " "
                   and (words[j + 1][2][0].isupper() or words[j + 1][2].isdigit())):
                j += 1
            repl = "[name]"
        if repl is not None:
            out.append(text[pos:a])
            out.append(repl)
            pos = words[j][1]
        i = j + 1
    out.append(text[pos:])
    return "".join(out)


# -- project-bound masking ---------------------------------------------------------------------

#: Chat types that name one other person (Telegram, Viber).
PERSONAL_TYPES = frozenset({"personal_chat", "personal", "private", "saved_messages"})


def chat_pseudonym(secret: bytes, chat_key: str) -> str:
    return "c" + hmac.new(secret, f"chat\x1f{chat_key}".encode(), hashlib.sha256).hexdigest()[:11]


def is_personal(chat_type: str | None, title: str | None, sender_names: Iterable[str],
                platform: str | None = None) -> bool:
    """A 1:1 chat: by its type where the source gives one, else by a title that is a sender's
    display name (WhatsApp "WhatsApp Chat with Anna"; a Telegram channel whose every post is
    "from" its title is not one) or a phone number."""
    base = (chat_type or "").removesuffix(" (left)")
    if base in PERSONAL_TYPES:
        return True
    if base:  # a group or channel type given by the source
        return False
    if not title:
        return False
    senders = {_norm(n) for n in sender_names}
    # a Telegram channel's posts are all "from" its title; a 1:1 chat has the partner and the
    # exporter (WhatsApp has no channels: there a lone sender named as the chat is the partner)
    channel_like = platform == "telegram" and len(senders) == 1
    return (_norm(title) in senders and not channel_like) or mask_pii(title) != title
