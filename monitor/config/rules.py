"""Load and validate the rules file: `load_rules(path) -> RuleSet`, or RulesError with file:line:column.

The YAML is read with ruamel.yaml so that every value keeps its line; pydantic validates the shape;
`${VAR}` and `${VAR:-default}` in strings come from the environment; every query is compiled here, so a
rules file that loads is a rules file that runs.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import snowballstemmer
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config.durations import parse_duration
from monitor.config.redaction import mask_text, redact_url
from monitor.config.yamlfile import field_problem, load_yaml, load_yaml_fast, locate
from monitor.errors import QueryError, RuleProblem, RulesError, YamlProblem
from monitor.matching.engine import Engine, MatchRule, Negated
from monitor.matching.language import known
from monitor.matching.query import Compiler, Stemmer

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# A Discord id (a "snowflake"): up to 20 digits, written in YAML as a number or a string.
Snowflake = Annotated[
    str,
    BeforeValidator(lambda value: str(value) if isinstance(value, int) and not isinstance(value, bool) else value),
    Field(pattern=r"^[0-9]{1,20}$"),
]
Format = Literal["generic", "slack", "discord", "mattermost", "teams", "template"]
# Standard Webhooks' recommended schedule: the first attempt at once, then these waits (±20 % jitter).
DEFAULT_RETRY_SCHEDULE = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
LANGUAGES = {
    "nl": "dutch",
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "ru": "russian",
    "pt": "portuguese",
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Webhook(_Model):
    url: str
    secret: SecretStr | None = None
    format: Format = "generic"
    template: Path | None = None
    timeout: Duration = timedelta(seconds=15)
    retry_schedule: tuple[Duration, ...] = tuple(parse_duration(d) for d in DEFAULT_RETRY_SCHEDULE)
    max_per_minute: int | None = Field(default=None, ge=1)
    headers: dict[str, str] = {}
    proxy: str | None = None  # an http:// or https:// proxy URL, or `direct`; unset: the environment's
    thread: Literal["story"] | None = None  # discord: a story's first alert starts a thread, its follow-ups go there
    thread_id: Snowflake | None = None  # discord: every message goes into this thread

    @field_validator("thread", "thread_id")
    @classmethod
    def _discord_threads(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("format") != "discord":
            raise ValueError(f"`{info.field_name}` is only used with format 'discord', not {info.data.get('format')!r}")
        if info.field_name == "thread_id" and info.data.get("thread") is not None:
            raise ValueError("`thread_id` (one thread for every message) and `thread: story` exclude each other")
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is None or value == "direct":
            return value
        expected = "expected `direct` or an http:// or https:// proxy URL"
        try:
            http_url(value)
        except ValueError as exc:
            raise ValueError(f"{expected}: {exc}") from None
        if httpx.URL(value).path not in ("", "/"):
            raise ValueError(f"{expected} without a path, got {redact_url(value)[:80]!r}")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _template_file(self) -> Webhook:
        if self.format == "template" and self.template is None:
            raise ValueError("format 'template' needs `template: PATH` (a Jinja2 file that renders JSON)")
        if self.template is not None and self.format != "template":
            raise ValueError(f"`template` is only used with format 'template', not {self.format!r}")
        return self

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value().removeprefix("whsec_")
        try:
            if len(base64.b64decode(raw, validate=True)) < 16:
                raise ValueError
        except ValueError:
            raise ValueError("expected a Standard Webhooks secret: whsec_ then base64 of 16 to 64 bytes") from None
        return value


def http_url(value: str) -> str:
    """The URL if httpx can send to it: scheme http or https, a host, a port from 1 to 65535 (else a
    ValueError that shows the URL with its secrets masked)."""
    shown = repr(redact_url(value)[:80])
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL ({mask_text(str(exc))}): {shown}") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, got {shown}")
    if not url.host:
        raise ValueError(f"expected a host in the URL, got {shown}")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError(f"port {url.port} is out of range 1 to 65535: {shown}")
    return value


class Examples(_Model):
    match: tuple[str, ...] = ()
    no_match: tuple[str, ...] = ()


class Rule(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]
    query: str | dict[str, str]  # one query for any language, or one per language code (`{nl: ..., en: ...}`)
    notify: list[str] | None = None  # None: every webhook
    digest_cron: str | None = Field(default=None, alias="schedule")  # `schedule:` in YAML: a digest rule's cron
    send_empty: bool = False
    realert: Duration | None = None
    realert_key: Literal["rule", "date", "term"] = "rule"
    # alert_each: every match alerts (stories or not); first_then_updates: with stories on, a rule alerts once per
    # story, then only when something is new (a higher count, a new matched rule, a new outlet after a quiet
    # period: a follow-up, monitor/notify/threads.py); digest_updates: the same, its follow-ups in its digest
    story: Literal["alert_each", "first_then_updates", "digest_updates"] = "alert_each"
    realert_on_increase: bool = False  # alert again within `realert` when the match's count rises
    stem: bool | str = False
    case_sensitive: bool = False
    min_hits: int = Field(default=1, ge=1)
    min_count: float | None = Field(default=None, ge=0)
    negated: Negated = "include"
    max_age: Duration | None = None
    examples: Examples = Examples()

    @field_validator("query")
    @classmethod
    def _languages(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        if isinstance(value, dict):
            if not value:
                raise ValueError("expected a query, or a mapping of language codes to queries (nl: ..., en: ...)")
            _check_languages(value)
        return value

    def queries(self) -> list[tuple[str | None, str]]:
        """(language or None for any, query) of each of the rule's queries."""
        return [(None, self.query)] if isinstance(self.query, str) else list(self.query.items())

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from monitor.schedule import cron  # APScheduler: only for rules files with a digest rule

            try:
                cron(value, UTC)
            except ValueError as exc:
                raise ValueError(f"expected a cron expression like '0 */2 * * *': {exc}") from None
        return value

    @field_validator("stem")
    @classmethod
    def _language(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and LANGUAGES.get(value, value) not in snowballstemmer.algorithms():
            raise ValueError(f"unknown stemming language {value!r}; e.g. nl, en, de or a Snowball name")
        return value


def _check_languages(value: Mapping[str, object]) -> None:
    unknown = [code for code in value if code != code.lower() or not known(code)]
    if unknown:
        code = unknown[0]
        hint = f" (write {code.lower()!r})" if code != code.lower() and known(code.lower()) else ""
        raise ValueError(
            f"unknown language code {code!r}{hint}: expected a lower-case ISO 639-1 code such as nl, en, de, fr, ru"
        )


def _language_lists(value: list[str] | dict[str, list[str]]) -> list[str] | dict[str, list[str]]:
    if isinstance(value, dict):
        _check_languages(value)
    return value


class RulesFile(_Model):
    version: Literal[1] = 1
    # A list of items, or items per language: `@name` in a query for one language takes that language's
    # items; in a query for any language, all of them.
    lists: dict[str, Annotated[list[str] | dict[str, list[str]], AfterValidator(_language_lists)]] = {}
    webhooks: dict[str, Webhook] = {}
    rules: list[Rule]


@dataclass(frozen=True, slots=True)
class RuleSet:
    path: str
    rules: tuple[Rule, ...]
    webhooks: Mapping[str, Webhook]
    engine: Engine
    loaded_at: datetime
    by_name: Mapping[str, Rule] = field(default_factory=dict)  # every rule by its name, for `rule()`
    digest: str = ""  # sha256 of the file as read: the same rules in another process (`monitor.ingest.worker`)

    def __post_init__(self) -> None:
        if not self.by_name:
            object.__setattr__(self, "by_name", {rule.name: rule for rule in self.rules})

    def rule(self, name: str) -> Rule:
        return self.by_name[name]

    def targets(self, rule: Rule) -> list[str]:
        return list(self.webhooks) if rule.notify is None else rule.notify


@cache
def stemmer_for(language: str) -> Stemmer:
    """The language's Snowball stemmer, cached per word. snowballstemmer runs PyStemmer's C stemmers when that
    is installed (a dependency: the same stems, 70x faster); its pure-Python stemmers keep their state in the
    object, so one stemmer is used by one thread at a time (the ingest lanes match in threads of their own)."""
    algorithm = snowballstemmer.stemmer(LANGUAGES.get(language, language))
    lock = threading.Lock()

    def stem_word(word: str) -> str:
        with lock:
            stemmed: str = algorithm.stemWord(word)
            return stemmed

    stem: Stemmer = lru_cache(maxsize=200_000)(stem_word)
    return stem


# Checks a webhook's template file, raising ValueError that says what is wrong with it: the caller passes
# `monitor.notify.formats.template.load_template` (the formats import this module, so it cannot import them).
TemplateCheck = Callable[[Path], object]


def load_rules(
    path: str | Path, environ: Mapping[str, str] | None = None, check_template: TemplateCheck | None = None
) -> RuleSet:
    """Load, validate and compile a rules file. Raises RulesError listing every problem found, a webhook's
    template file that `check_template` refuses among them (without it, template paths are only resolved).

    The file is parsed with a fast C loader; only when something is wrong is it parsed again with the
    slower loader that keeps every value's line (ten times slower on a file of 10,000 rules)."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = ""  # _load says what is wrong with the file
    with _collector_paused:
        try:
            ruleset = _load(path, environ, check_template, located=False)
        except RulesError:
            ruleset = _load(path, environ, check_template, located=True)
    object.__setattr__(ruleset, "digest", digest)
    return ruleset


class _CollectorPause:
    """The cyclic garbage collector off while rules load, then as it was (reloads run in threads, maybe two).

    A load of 10,000 rules makes about a million objects, most of which stay, and hardly any cycles: the
    collector would walk the growing heap again and again (a third of the load time). Afterwards every
    object goes to the oldest generation (`freeze` then `unfreeze`: no walk), else the first young collection
    would walk them all at once; not when something is frozen, which `unfreeze` would thaw.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loads = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        with self._lock:
            if self._loads == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._loads += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._loads -= 1
            if self._loads == 0 and self._was_enabled:
                if gc.get_freeze_count() == 0:
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


_collector_paused = _CollectorPause()


def _load(path: Path, environ: Mapping[str, str], check_template: TemplateCheck | None, located: bool) -> RuleSet:
    try:
        raw = load_yaml(path) if located else load_yaml_fast(path)
    except YamlProblem as exc:
        raise RulesError([RuleProblem(path, exc.line, exc.message, exc.column)]) from None
    problems: list[RuleProblem] = []
    data = _substitute(raw, environ, path, problems, None)
    if problems:
        raise RulesError(problems)
    if not isinstance(data, dict):
        raise RulesError([RuleProblem(path, 1, "expected a mapping with 'version', 'webhooks' and 'rules'")])
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesError([_problem(path, raw, err) for err in exc.errors()]) from None
    return _compile(path, raw, parsed, check_template)


def _compile(path: Path, raw: Any, parsed: RulesFile, check_template: TemplateCheck | None) -> RuleSet:
    problems = []
    compiled = []
    names: set[str] = set()
    lists = cache(partial(_lists_for, parsed.lists))
    for index, rule in enumerate(parsed.rules):
        if rule.name in names:
            problems.append(
                RuleProblem(path, locate(raw, ("rules", index, "name"))[0], f"duplicate rule name {rule.name!r}")
            )
        names.add(rule.name)
        if rule.realert_on_increase and rule.realert is None:
            where = locate(raw, ("rules", index, "realert_on_increase"))[0]
            needs = "realert_on_increase needs realert (the window in which counts are compared)"
            problems.append(RuleProblem(path, where, f"rule {rule.name!r}: {needs}"))
        if rule.story == "digest_updates" and rule.digest_cron is None:
            where = locate(raw, ("rules", index, "story"))[0]
            needs = "story: digest_updates needs schedule (the digest its follow-ups are gathered into)"
            problems.append(RuleProblem(path, where, f"rule {rule.name!r}: {needs}"))
        for target in rule.notify or []:
            if target not in parsed.webhooks:
                known = ", ".join(parsed.webhooks) or "none defined"
                where = locate(raw, ("rules", index, "notify"))[0]
                problems.append(
                    RuleProblem(path, where, f"rule {rule.name!r}: unknown webhook {target!r} (webhooks: {known})")
                )
        for language, query in rule.queries():
            stemmer = _stemmer(rule.stem, language)
            compiler = Compiler(lists(language), case_sensitive=rule.case_sensitive, stemmer=stemmer)
            try:
                node = compiler.compile(query)
            except QueryError as exc:
                problems.append(_query_problem(path, raw, index, rule, exc, language))
                continue
            compiled.append(
                MatchRule(
                    rule.name,
                    query,
                    node,
                    rule.min_hits,
                    rule.max_age,
                    language,
                    rule.min_count,
                    rule.negated,
                    counts=rule.realert_on_increase,
                )
            )
    webhooks = {
        name: _with_template(path, raw, name, hook, check_template, problems) for name, hook in parsed.webhooks.items()
    }
    if problems:
        raise RulesError(problems)
    engine = Engine(compiled)
    return RuleSet(str(path), tuple(parsed.rules), webhooks, engine, datetime.now(UTC))


def _stemmer(stem: bool | str, language: str | None) -> Stemmer | None:
    """`stem: true` stems with the query's language (Dutch for a query of any language); a name, with that."""
    if stem is False:
        return None
    if stem is True:
        language = language or "nl"
        return stemmer_for(language) if LANGUAGES.get(language, language) in snowballstemmer.algorithms() else None
    return stemmer_for(stem)


def _lists_for(lists: Mapping[str, list[str] | dict[str, list[str]]], language: str | None) -> dict[str, list[str]]:
    """The lists as a query in `language` (None: any) sees them: a per-language list gives that language's
    items, or all of its items in a query of any language (none in a language it has no items for)."""
    seen: dict[str, list[str]] = {}
    for name, items in lists.items():
        if isinstance(items, list):
            seen[name] = items
        elif language is None:
            seen[name] = list(dict.fromkeys(item for group in items.values() for item in group))
        else:
            seen[name] = items.get(language, [])
    return seen


def _query_problem(
    path: Path, raw: Any, index: int, rule: Rule, exc: QueryError, language: str | None = None
) -> RuleProblem:
    where = ("rules", index, "query") if language is None else ("rules", index, "query", language)
    line, column = locate(raw, where)
    col = None
    if exc.position is not None and column is not None and line is not None:
        # ruamel does not keep quoting (no preserve_quotes): look at the source for an opening quote.
        source = path.read_text(encoding="utf-8").splitlines()[line - 1]
        col = column + exc.position + (source[column - 1 : column] in {"'", '"'})
    query = rule.query if language is None else rule.query[language]  # type: ignore[index]
    named = f"rule {rule.name!r}" if language is None else f"rule {rule.name!r} ({language})"
    return RuleProblem(path, line, f"{named}: {exc} (query {query!r})", col)


def _with_template(
    path: Path, raw: Any, name: str, hook: Webhook, check_template: TemplateCheck | None, problems: list[RuleProblem]
) -> Webhook:
    """A template path relative to the rules file's folder, checked now rather than at delivery."""
    if hook.template is None:
        return hook
    template = hook.template if hook.template.is_absolute() else path.parent / hook.template
    try:
        if check_template is not None:
            check_template(template)
    except ValueError as exc:
        where = locate(raw, ("webhooks", name, "template"))[0]
        problems.append(RuleProblem(path, where, f"webhook {name!r}: {exc}"))
    return hook.model_copy(update={"template": template})


def _substitute(
    value: Any, environ: Mapping[str, str], path: Path, problems: list[RuleProblem], line: int | None
) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string; a missing variable is a problem."""
    if isinstance(value, dict):
        lines = getattr(value, "lc", None)  # ruamel's; a plain dict leaves `line` as it is
        return {
            key: item
            if type(item) is str and "${" not in item  # most values: as they are, without a call
            else _substitute(item, environ, path, problems, line if lines is None else lines.key(key)[0] + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        lines = getattr(value, "lc", None)
        return [
            item
            if type(item) is str and "${" not in item
            else _substitute(item, environ, path, problems, line if lines is None else lines.item(i)[0] + 1)
            for i, item in enumerate(value)
        ]
    if isinstance(value, str):

        def replace(found: re.Match[str]) -> str:
            name, default = found.group(1), found.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(RuleProblem(path, line, f"environment variable {name} is not set"))
            return ""

        return _VARIABLE.sub(replace, str(value))
    return value


def _problem(path: Path, raw: Any, error: Mapping[str, Any]) -> RuleProblem:
    line, column = locate(raw, tuple(error["loc"]))
    return RuleProblem(path, line, _by_name(raw, error), column)


def _by_name(raw: Any, error: Mapping[str, Any]) -> str:
    """`rule 'x': quer: unknown key`, as the other rule errors name a rule, not `rules.0.quer: ...`."""
    loc = tuple(error["loc"])
    try:
        name = raw["rules"][loc[1]]["name"] if loc[:1] == ("rules",) and len(loc) > 2 else None
    except (KeyError, IndexError, TypeError):
        name = None
    if not isinstance(name, str):
        return field_problem(error)
    return f"rule {name!r}: {field_problem({**error, 'loc': loc[2:]})}"
