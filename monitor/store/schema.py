"""The store's tables (SQLAlchemy Core): private to `monitor.store`, whose methods are the only SQL.

The migrations (`monitor.store.migrations`, their `env.py` compares against `metadata`) and tests that must poke
raw rows (a corrupted lease, a row of an older version) import this module explicitly.
Times are UNIX seconds (float).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

SCHEMA_VERSION = "1"
metadata = MetaData()

files = Table(
    "files",
    metadata,
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("content_hash", String(64)),
    Column("outcome", String(16), nullable=False),  # accepted | duplicate | rejected
    Column("code", String(32)),
    Column("reason", Text),
    Column("seen_at", Float, nullable=False),
    Index("files_content_hash", "content_hash"),  # the prune's "no ledger row refers to this claim"
)
articles = Table(
    "articles",
    metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("article_date", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("matches", Integer, nullable=False),
    Column("claimed_at", Float, nullable=False),
)
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("rule", String(80), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON of the match: rule, article, hits, clause (monitor.notify.payload)
    Column("realert_key", Text, nullable=False),
    Column("suppressed", Boolean, nullable=False),
    Column("digest_pending", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("count_value", Float),  # the value of the match's largest count (`realert_on_increase`), NULL: none
    Column("story", String(40)),  # the article's story (`story_articles.story`), NULL: stories were off
    Index("alerts_rule_created", "rule", "created_at"),
    Index("alerts_realert", "rule", "realert_key", "created_at"),  # the realert lookup (`Transaction.alerted_since`)
    Index("alerts_story", "story", "rule", "created_at"),  # a rule's thread in a story (`story_threads`, `story_seen`)
)
# The digest flush's check and query and the start-up catch-up (`digest_waiting`, `take_digest_alerts`,
# `oldest_pending` in monitor.store.digests): only the few alerts still waiting for a digest are in it. Its
# condition is the queries' own, so that both SQLite and PostgreSQL see that the index covers them.
Index(
    "alerts_digest_pending",
    alerts.c.rule,
    alerts.c.created_at,
    sqlite_where=alerts.c.digest_pending.is_(True),
    postgresql_where=alerts.c.digest_pending.is_(True),
)
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(64), primary_key=True),  # the webhook-id: the same on every attempt
    Column("webhook", String(80), nullable=False),
    Column("kind", String(16), nullable=False),  # alert | digest
    Column("rule", String(80), nullable=False),
    Column("alert_id", String(64)),  # an alert's delivery: the alert whose payload it sends
    Column("payload", Text),  # JSON: a digest part's, with alert ids (DIGEST_REFS); a full payload in older rows
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    Index("deliveries_due", "state", "due_at"),
    Index("deliveries_alert", "alert_id"),  # the prune's "no delivery refers to this alert"
)
webhook_state = Table(
    "webhook_state",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", Text),
    Column("last_delivery_at", Float),
    Column("last_error", Text),
    Column("last_error_at", Float),
)
digest_claims = Table(
    "digest_claims",
    metadata,
    Column("rule", String(80), primary_key=True),
    Column("slot", String(40), primary_key=True),  # the schedule time, ISO 8601 in UTC
    Column("flushed_at", Float, nullable=False),
)
# Files being read on PostgreSQL: a replica claims a file version here before it reads it, and deletes the
# row in the transaction that writes the file's ledger row (`Store.claim_reading`, `release_reading`).
reading = Table(
    "reading",
    metadata,
    Column("path", Text, primary_key=True),  # the ledger key (`files.path`)
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("owner", String(80), nullable=False),  # host:pid:token of the replica reading it
    Column("claimed_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False),
)
# Each claimed article's place in its story (monitor.matching.stories), in the order the stories were assigned
# (`seq`): a replica's in-memory index loads the rows after the last `seq` it has before it assigns.
story_articles = Table(
    "story_articles",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("story", String(40), nullable=False),
    Column("path", Text, nullable=False),  # the ledger key of the file whose content it was
    Column("version", Integer, nullable=False),
    Column("article_at", Float, nullable=False),  # the latest instant of the article's date
    Column("created_at", Float, nullable=False),
    Column("signature", LargeBinary, nullable=False),  # story terms and word sketch (stories.signature; empty: none)
    Column("rules", Text, nullable=False),  # the rules matched, one per line
    Index("story_articles_path", "path", "version"),
    Index("story_articles_created", "created_at"),
    sqlite_autoincrement=True,  # a pruned last row's number is never given again
)
# The Discord thread each story's first alert started, per webhook (`thread: story`): its follow-ups to that
# webhook go there (monitor.notify.formats.discord). Kept as long as story rows (the prune's story cut-off).
chat_threads = Table(
    "chat_threads",
    metadata,
    Column("webhook", String(80), primary_key=True),
    Column("alert_id", String(64), primary_key=True),  # the story's first alert of the rule (`update_of`)
    Column("thread_id", String(20), nullable=False),  # the thread's channel id (a Discord snowflake)
    Column("created_at", Float, nullable=False),
    Index("chat_threads_created", "created_at"),
)
meta = Table("meta", metadata, Column("key", String(40), primary_key=True), Column("value", Text, nullable=False))
