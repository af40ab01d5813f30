"""The standard message row and every other table's columns, declared once.

All timestamps are timezone-aware UTC (``timestamp[us, tz=UTC]``). When a source only gives naive
local time (WhatsApp), the time is interpreted in the zone the user declared at ingest (default
UTC) and ``ts_naive`` is true, so analyses can tell exact instants from wall-clock readings.
"""

from __future__ import annotations

import pyarrow as pa

# 2: enrichment keeps lemmas without tokens; the search index is keyed by lemma ids
# 3: messages has no primary key; uid_hash (of the uid) deduplicates and finds messages
# 4: original records are kept in compressed blocks (original_blocks), not a row each
SCHEMA_VERSION = 4

KINDS = ("message", "media", "service")

#: One row per stored message. ``uid`` is stable: a hash of (platform, chat_id, message_id).
MESSAGE_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("platform", pa.string(), nullable=False),  # telegram | whatsapp | viber | generic
        pa.field("chat_key", pa.string(), nullable=False),  # "<platform>:<chat_id>"
        pa.field("message_id", pa.string(), nullable=False),  # platform id, or content-derived
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("ts_naive", pa.bool_(), nullable=False),  # source gave naive local time only
        pa.field("author_key", pa.string()),  # keyed-hash pseudonym, never a raw name
        pa.field("text", pa.string(), nullable=False),  # plain text, entities flattened
        pa.field("kind", pa.string(), nullable=False),  # message | media | service
        pa.field("media", pa.string()),  # media type when kind is media (photo, video_file, …)
        pa.field("reply_to", pa.string()),  # message_id replied to, same chat
        pa.field("forwarded_from", pa.string()),  # pseudonym of the forward origin
        pa.field("entities", pa.string()),  # JSON list of {type, text, …} when the source has them
        pa.field("edited", pa.bool_()),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("source_pos", pa.int64(), nullable=False),  # record ordinal within the source
        pa.field("source_loc", pa.string(), nullable=False),  # human-readable position
    ]
)

MESSAGE_COLUMNS: tuple[str, ...] = tuple(MESSAGE_SCHEMA.names)

#: Documentation for each message column (rendered into docs/schema.md by a test).
MESSAGE_DOCS: dict[str, str] = {
    "uid": "Stable id: blake2b of platform, chat id and message id. Same message, same uid.",
    "platform": "telegram, whatsapp, viber or generic.",
    "chat_key": "Chat identity across sources: '<platform>:<chat id>'.",
    "message_id": "The platform's message id; for WhatsApp (no ids) a hash of time, author, "
    "text and occurrence, so overlapping exports deduplicate.",
    "ts": "UTC timestamp.",
    "ts_naive": "True when the source gave naive local time, read in the --tz zone.",
    "author_key": "Keyed-hash pseudonym of the sender (per-project secret).",
    "text": "Plain text with formatting entities flattened.",
    "kind": "message, media (media with or without caption) or service (joins, pins, …).",
    "media": "Media type for media messages.",
    "reply_to": "message_id of the message replied to, in the same chat.",
    "forwarded_from": "Pseudonym of the forward origin's display name.",
    "entities": "JSON list of formatting entities as the source gave them.",
    "edited": "True when the source marks the message as edited.",
    "source_id": "The source (input export) the row came from.",
    "source_pos": "Ordinal of the record within its source (0-based).",
    "source_loc": "Human-readable position: file, line or record index.",
}

#: Every record read, verbatim, keyed by (source_id, source_pos), with the uid of its message (a
#: duplicate's too, so erasing a message erases every copy read; null only for records a version
#: 3 project kept of duplicates). Stored in compressed blocks (:mod:`chatlens.store.originals`),
#: read with ``Store.originals``. Originals hold display names, so like ``identities`` they never
#: leave the project: exports and views use ``messages`` only.
ORIGINAL_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("source_pos", pa.int64(), nullable=False),
        pa.field("uid", pa.string()),
        pa.field("raw", pa.string(), nullable=False),
    ]
)

#: What only the Telegram API gives, one row per collected message (joins ``messages`` on
#: ``uid``). A separate table, not new message columns: exports and older projects are untouched,
#: and the table is created the first time a project collects. Peer ids here are chats and
#: channels only; a forward from a person is kept as ``fwd_kind = 'user'`` with no id (its
#: pseudonym is ``messages.forwarded_from``). Reactions are counts per emoji, never who reacted.
COLLECTED_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("chat_key", pa.string(), nullable=False),
        pa.field("message_id", pa.int64(), nullable=False),
        pa.field("views", pa.int64()),
        pa.field("forwards", pa.int64()),
        pa.field("replies", pa.int64()),
        pa.field("replies_max_id", pa.int64()),
        pa.field("discussion_chat_key", pa.string()),
        pa.field("fwd_kind", pa.string()),  # channel | chat | user | hidden
        pa.field("fwd_chat_key", pa.string()),
        pa.field("fwd_message_id", pa.int64()),
        pa.field("fwd_date", pa.timestamp("us", tz="UTC")),
        pa.field("reply_to_id", pa.int64()),
        pa.field("reply_to_chat_key", pa.string()),
        pa.field("thread_id", pa.int64()),
        pa.field("post_key", pa.string()),
        pa.field("grouped_id", pa.int64()),
        pa.field("reactions", pa.string()),  # JSON {emoji: count}
        pa.field("edit_date", pa.timestamp("us", tz="UTC")),
        pa.field("edit_hide", pa.bool_()),
        pa.field("fact_check", pa.string()),
        pa.field("meta", pa.string()),  # JSON: media file metadata, service action, web page
        pa.field("deleted_at", pa.timestamp("us", tz="UTC")),
        pa.field("run_id", pa.string()),
    ]
)

COLLECTED_DOCS: dict[str, str] = {
    "uid": "The message's uid in ``messages``.",
    "chat_key": "The chat the message is in.",
    "message_id": "Telegram's message id (an integer).",
    "views": "View counter at collection time (channel posts).",
    "forwards": "How often the post was forwarded, at collection time.",
    "replies": "Number of replies or comments.",
    "replies_max_id": "Highest comment id in the post's discussion thread.",
    "discussion_chat_key": "The linked discussion chat holding the post's comments.",
    "fwd_kind": "Kind of forward origin: channel, chat, user or hidden.",
    "fwd_chat_key": "Origin chat or channel of a forward (never a person).",
    "fwd_message_id": "Message id of the forwarded post in its origin channel.",
    "fwd_date": "Date of the original message that was forwarded.",
    "reply_to_id": "Message id replied to.",
    "reply_to_chat_key": "Chat of the message replied to when it is another chat.",
    "thread_id": "Forum topic or comment thread id.",
    "post_key": "For comments: '<channel chat_key>/<post id>' of the post commented on.",
    "grouped_id": "Album id, shared by every item of an album.",
    "reactions": "JSON object of reaction counts per emoji (never who reacted).",
    "edit_date": "Last edit date the server reports.",
    "edit_hide": "True when the edit was not visible to users (e.g. a reaction).",
    "fact_check": "Text of the fact-check note Telegram attached, where present.",
    "meta": "JSON: media file metadata (mime type, size, name, duration), service action, "
    "web page.",
    "deleted_at": "When a re-collection found the message gone (it is kept, only marked).",
    "run_id": "The collect run that last saw the message.",
}
