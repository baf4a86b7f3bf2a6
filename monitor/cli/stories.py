"""`news-monitor stories` and `check`'s story preview: the stories of the state store, read only (a command
before the daemon's first start finds none and creates no state)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from monitor.cli.args import ConfigOption, JsonOption, open_existing_store
from monitor.cli.console import console, plural, shown

if TYPE_CHECKING:
    from monitor.config.settings import Settings
    from monitor.ingest.articles import Article
    from monitor.store import Store, StoryAlert


def list_stories(
    config: ConfigOption = None,
    since: Annotated[str, typer.Option(help="Articles that arrived within this long (24h, 3d ...).")] = "24h",
    as_json: JsonOption = False,
) -> None:
    """Stories with their articles (path, version, date) and alert ids, the newest story first."""
    from monitor.config.durations import parse_duration

    start = time.time() - parse_duration(since).total_seconds()
    found = open_existing_store(config)
    stories = grouped(found.story_articles(start)) if found is not None else []
    if as_json:
        console().print_json(data=stories)
        return
    out = console()
    for story in stories:
        count = plural(len(story["articles"]), "article")
        out.print(f"[bold]{story['story']}[/bold]  {count}, last {_when(story['last_at'])}")
        for article in story["articles"]:
            alerts = ", ".join(article["alerts"]) or "no alert"
            out.print(f"  v{article['version']}  {article['date']}  {shown(article['path'])}  {alerts}")
    if not stories:
        out.print(f"no story with an article since {_when(start)}")


def grouped(rows: list[StoryAlert]) -> list[dict[str, Any]]:
    """The rows (in the order they were assigned) by story, the story whose last article came last first."""
    stories: dict[str, dict[str, Any]] = {}
    for row, alerts in rows:
        story = stories.setdefault(row.story, {"story": row.story, "articles": [], "last_at": row.created_at})
        story["last_at"] = max(story["last_at"], row.created_at)
        story["articles"].append(
            {
                "path": row.path,
                "version": row.version,
                "date": datetime.fromtimestamp(row.article_at, UTC).date().isoformat(),
                "content_hash": row.content_hash,
                "arrived_at": row.created_at,
                "rules": list(row.rules),
                "alerts": list(alerts),
            }
        )
    return sorted(stories.values(), key=lambda story: story["last_at"], reverse=True)


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def preview(settings: Settings, article: Article, rules: list[str]) -> dict[str, Any] | None:
    """The story the article would join given the store's rows of the window (read only); None: stories
    are off or there is no state yet."""
    from monitor.ingest.storyline import entry_of, new_entry
    from monitor.matching.stories import StoryIndex, signature

    options = settings.stories
    if not options.enabled:  # before anything is opened: `check` with stories off never touches the state
        return None
    found = _store(settings)
    if found is None:
        return None
    try:
        now = time.time()
        window = options.window.total_seconds()
        index = StoryIndex(window, options.threshold)
        rows = found.story_rows(now - window)
        index.load(entry_of(row) for row in rows)
        entry = new_entry(article, signature(article.text), rules, now)
        paths = dict.fromkeys([article.path, os.path.abspath(article.path)])  # as the daemon may have it
        latest = next((row for path in paths if (row := found.latest_story_version(path)) is not None), None)
    finally:
        found.close()
    ref = index.decide(entry, entry_of(latest) if latest is not None else None)
    members = sum(1 for row in rows if row.story == ref.story)
    return {
        "story": ref.story,
        "new": ref.started,
        "version": ref.version,
        "similarity": round(ref.similarity, 3),
        "articles": members,
    }


def _store(settings: Settings) -> Store | None:
    """The state store, read only: None before the daemon's first start (nothing is created)."""
    from monitor.store import COMMAND_CONNECTIONS, Store, no_state_yet

    if no_state_yet(settings.state.url):
        return None
    opened = Store(settings.state.url, settings.state.postgres, COMMAND_CONNECTIONS)
    opened.create()
    return opened


def shown_preview(story: dict[str, Any]) -> str:
    """`story: would join story_… (similarity 0.43, 3 articles)`, `story: new`."""
    if story["new"]:
        return "story: new"
    if story["version"] > 1:
        articles = plural(story["articles"], "article")
        return f"story: would be version {story['version']} of {story['story']} ({articles})"
    return (
        f"story: would join {story['story']} (similarity {story['similarity']:.2f},"
        f" {plural(story['articles'], 'article')})"
    )
