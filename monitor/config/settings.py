"""Daemon settings: `config/monitor.yaml`, overridden by `MONITOR_*` variables (nested with `__`) and `.env`."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from monitor.config.durations import parse_duration
from monitor.config.envvars import PREFIX, unknown_variables, variable_for
from monitor.config.yamlfile import field_problem, load_yaml, locate
from monitor.errors import ConfigError, RuleProblem, YamlProblem

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

    from monitor.config.rules import Webhook

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ObserverKind = Literal["native", "polling"]
LogFormat = Literal["auto", "json", "console"]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR"],
    BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value),  # `debug` as well
]
DEFAULT_CONFIG = Path("config/monitor.yaml")
LEASE_SPARE = timedelta(seconds=5)  # of a lease left past an attempt's end (at most a quarter): its outcome stored
RENEWALS = 3  # a lease held is renewed every third of its length (monitor.notify.deliverer)
DEFAULT_LEASE = timedelta(seconds=30)  # delivery.lease unset, for webhook timeouts up to 15 s


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WatchSettings(_Section):
    folders: list[Path] = [Path("articles")]
    observer: ObserverKind = "native"
    settle: Duration = timedelta(seconds=2)
    reconcile_interval: Duration = timedelta(minutes=5)
    read_lease: Duration = timedelta(seconds=60)  # replicas (PostgreSQL): how long a claim to read a file holds
    max_article_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    queue_size: int = Field(default=10_000, ge=1)
    suffixes: list[str] = [".txt"]
    create_folders: bool = False  # make missing folders at start (and when removed); else a missing one is an error

    def missing_folders(self) -> list[Path]:
        """The watched folders that are not there (or are not folders)."""
        return [folder for folder in self.folders if not folder.is_dir()]

    def check_folders(self) -> None:
        """Refuse a watched folder that is not there (ConfigError, one line each), unless `create_folders`
        says to make it: a typo in a path must not become a new, empty folder that is watched forever."""
        if self.create_folders:
            return
        if missing := self.missing_folders():
            raise ConfigError(
                "\n".join(
                    f"watch.folders: {str(folder)!r} does not exist (create it, or set watch.create_folders: true)"
                    for folder in missing
                )
            )


class RetentionSettings(_Section):
    """How long the store keeps what is done with; the prune (monitor/store/retention.py) deletes the rest."""

    deliveries: Duration = timedelta(days=30)  # delivered deliveries, after their delivery
    dead: Duration = timedelta(days=90)  # dead deliveries, after their last attempt (unless replayed)
    alerts: Duration = timedelta(days=90)  # at least the longest `realert` window + 1 day; see README
    articles: Duration = timedelta(days=365)  # ledger rows of files gone from disk, then their claims
    rejections: Duration = timedelta(days=30)  # ledger rows of rejected files gone from disk
    prune_interval: Duration = timedelta(hours=1)  # how often the daemon prunes; 0: never (`db prune` still does)
    batch: int = Field(default=1000, ge=1, le=100_000)  # rows per transaction

    @field_validator("deliveries", "dead", "alerts", "articles", "rejections", "prune_interval")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value


class PostgresSettings(_Section):
    """A PostgreSQL state store's sessions and pool (docs/scale-out.md, "Connections"). Each timeout makes a
    stuck operation fail (and be retried) instead of hanging; `pool_size` unset is what the daemon needs."""

    connect_timeout: Duration = timedelta(seconds=10)
    statement_timeout: Duration = timedelta(seconds=60)
    lock_timeout: Duration = timedelta(seconds=10)
    idle_in_transaction_timeout: Duration = timedelta(seconds=60)
    pool_size: int | None = Field(default=None, ge=1, le=1000)  # connections per process; unset: CONNECTIONS
    pool_timeout: Duration = timedelta(seconds=5)  # waiting for a free connection: past it the operation fails

    @field_validator("connect_timeout", "statement_timeout", "lock_timeout", "idle_in_transaction_timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        if not timedelta(milliseconds=1) <= value <= timedelta(days=1):
            raise ValueError("must be at least 1ms and at most 1d")
        return value

    @field_validator("pool_timeout")
    @classmethod
    def _wait(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=5):
            raise ValueError("must be more than 0s and at most 5m")
        return value


class StateSettings(_Section):
    url: str = "sqlite:///state/monitor.db"
    retention: RetentionSettings = RetentionSettings()
    postgres: PostgresSettings = PostgresSettings()


class DeliverySettings(_Section):
    concurrency: int = Field(default=8, ge=1, le=256)
    per_webhook: int | None = Field(default=None, ge=1, le=256)  # attempts at once for one webhook; unset: half
    shutdown_grace: Duration = timedelta(seconds=10)
    lease: Duration | None = None  # unset: 30 s, or longer if the rules' longest timeout needs it (lease_for)

    def lease_for(self, webhooks: Mapping[str, Webhook]) -> timedelta:
        """The lease in force: as set, or DEFAULT_LEASE raised to what the longest webhook timeout needs."""
        if self.lease is not None:
            return self.lease
        return max([DEFAULT_LEASE, *(_lease_needed(webhook.timeout) for webhook in webhooks.values())])

    def lease_problems(self, webhooks: Mapping[str, Webhook], rules_file: Path) -> list[RuleProblem]:
        """A lease held is renewed every third of its length, and an attempt starts only while its lease
        outlasts the attempt (its webhook's timeout, an overall deadline) and LEASE_SPARE: so the lease must
        hold that much two thirds of the way to its renewal, or deliveries waiting for a slot would be given
        back before they could start. A lease that is set is checked against the rules at start-up, on
        reload and by `validate`."""
        if not webhooks or self.lease is None:
            return []
        name, webhook = max(sorted(webhooks.items()), key=lambda item: item[1].timeout)
        needed = _lease_needed(webhook.timeout)
        if self.lease >= needed:
            return []
        message = (
            f"webhook {name!r}: timeout {_seconds(webhook.timeout)} needs delivery.lease of at least "
            f"{_seconds(needed)} (1.5 x (timeout + {_seconds(LEASE_SPARE)}): a lease is renewed every third of it), "
            f"but it is {_seconds(self.lease)}"
        )
        return [RuleProblem(rules_file, None, message)]


def _lease_needed(timeout: timedelta) -> timedelta:
    return (timeout + LEASE_SPARE) * RENEWALS / (RENEWALS - 1)


class HttpSettings(_Section):
    """The health and metrics port (monitor/health.py); its bounds keep slow or hostile clients from taking it."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    max_connections: int = Field(default=64, ge=1, le=1024)  # past it, the longest-waiting client is dropped
    request_timeout: Duration = timedelta(seconds=3)  # for the request line and headers together
    reload: bool | None = None  # POST /-/reload; unset: on when `host` is a loopback address

    def reload_allowed(self) -> bool:
        """Whether `POST /-/reload` reloads the rules: as set, or (unset) only on a loopback address, which
        only this machine reaches (the image listens on 0.0.0.0: there it is off unless set)."""
        if self.reload is not None:
            return self.reload
        try:
            return self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name
            return False

    @field_validator("request_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=1):
            raise ValueError("must be more than 0s and at most 1m")
        return value


class LimitsSettings(_Section):
    """Bounds on what one article may cost and produce (docs/formats.md, "Caps")."""

    max_hits: int = Field(default=20, ge=1, le=10_000)  # hits kept per match; `hits_total` counts them all
    hit_chars: int = Field(default=200, ge=20, le=100_000)  # a hit's text longer than this: its start and …
    max_payload_bytes: int = Field(default=65_536, ge=4_096, le=16 * 1024 * 1024)  # an alert's JSON payload
    match_budget: Duration = timedelta(seconds=30)  # CPU time one article may take to match: past it `too_costly`
    large_article_bytes: int = Field(default=1024 * 1024, ge=1)  # articles this large are read in their own lane


class StoriesSettings(_Section):
    """Story assignment (monitor/matching/stories.py): which earlier articles a new one may join."""

    # Off by default (experimental; README, "Stories"): on, every claimed article gets a story, at a cost in
    # throughput and memory that the benchmark states.
    enabled: bool = False
    window: Duration = timedelta(hours=72)  # articles that arrived longer ago join no story (and are pruned)
    # evidence (shared rare names and numbers) to join; at least 0.5: under it one shared word would do (and a
    # Jaccard value of the MinHash index before, 0.22, is refused rather than read as evidence)
    threshold: float = Field(default=1.3, ge=0.5, le=20)
    # `story: first_then_updates` / `digest_updates`: an article from an outlet new to the story gives a follow-up
    # when the rule sent nothing in the story for this long (monitor/notify/threads.py)
    quiet: Duration = timedelta(hours=3)

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=365):
            raise ValueError("must be at least 1m and at most 365d")
        return value

    @field_validator("quiet")
    @classmethod
    def _quiet(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(days=365):
            raise ValueError("must be at least 0s and at most 365d")
        return value


class LogSettings(_Section):
    level: LogLevel = "INFO"
    format: LogFormat = "auto"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MONITOR_", env_nested_delimiter="__", env_file=".env", extra="forbid", frozen=True
    )

    rules_file: Path = Path("config/rules.yaml")
    timezone: str = "UTC"
    watch: WatchSettings = WatchSettings()
    state: StateSettings = StateSettings()
    delivery: DeliverySettings = DeliverySettings()
    http: HttpSettings = HttpSettings()
    limits: LimitsSettings = LimitsSettings()
    stories: StoriesSettings = StoriesSettings()
    log: LogSettings = LogSettings()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: expected an IANA name such as Europe/Amsterdam") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


def _seconds(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}s"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (default config/monitor.yaml, if it exists), the environment and overrides."""
    config = path if path is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    raw = None
    if config is not None:
        try:
            raw = load_yaml(config)
        except YamlProblem as exc:
            where = f"{config}:{exc.line}" if exc.line else str(config)
            raise ConfigError(exc.message, source=where) from None
    if typos := unknown_variables(Settings.model_fields):
        raise ConfigError("\n".join(f"{name}: {_NOT_A_SETTING}" for name in typos))
    model_config = {**Settings.model_config, "yaml_file": str(config) if config else None}
    bound = type("Settings", (Settings,), {"model_config": model_config})
    try:
        settings: Settings = bound(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(_problem(error, raw, config) for error in exc.errors())) from None
    if config is None or _same_folder(config.parent, Path()):
        return settings  # the paths as written: nothing changes, not even their spelling (the ledger's keys)
    return _from_the_file(settings, raw, config.parent, overrides)


# -- paths in a settings file are from its folder -------------------------------------------------------------
_SQLITE = re.compile(r"(sqlite(?:\+\w+)?:///)([^?]*)(.*)", re.DOTALL)  # scheme, database path, query


def _same_folder(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def _from_the_file(settings: Settings, raw: Any, base: Path, overrides: Mapping[str, Any]) -> Settings:
    """The relative paths that the settings file gave (rules_file, watch.folders, a SQLite state.url) joined
    to the file's folder; those the environment, `.env` or the command gave stay from the working directory.
    A path joined so that its old place (from the working directory) exists and its new one does not is
    refused: a deployment upgraded without moving its files would otherwise read its folder again into a
    new, empty state (README, "Settings")."""

    def given(*loc: str) -> bool:
        return _holds(raw, loc) and not _holds(overrides, loc) and variable_for(loc) is None

    update: dict[str, Any] = {}
    if given("rules_file"):
        update["rules_file"] = Path(_moved("rules_file", base, str(settings.rules_file)))
    if given("watch", "folders"):
        folders = [Path(_moved("watch.folders", base, str(folder))) for folder in settings.watch.folders]
        update["watch"] = settings.watch.model_copy(update={"folders": folders})
    found = _SQLITE.fullmatch(settings.state.url)
    if given("state", "url") and found and found[2] not in ("", ":memory:"):
        url = found[1] + _moved("state.url", base, found[2]) + found[3]
        update["state"] = settings.state.model_copy(update={"url": url})
    return settings.model_copy(update=update) if update else settings


def _moved(key: str, base: Path, path: str) -> str:
    """`path` from the folder `base`, spelled as a version that took paths from the working directory would
    have had it written for the same place, so that the ledger's keys (the scan's paths) stay: as written
    when that is the same place; else normalised (`config/../seeds` is `seeds`), and relative to the working
    directory when below it; else absolute."""
    if os.path.isabs(path):
        return path
    joined = os.path.normpath(os.path.join(base, path))
    if _same_file(joined, path):  # the same place from here: spelled as written (the ledger's keys stay)
        return path
    here = os.getcwd()
    below = here != os.path.dirname(here) and joined.startswith(os.path.join(here, ""))  # (`/`: absolute)
    if os.path.isabs(joined) and below:  # below the working directory:
        joined = os.path.relpath(joined, here)  # spelled from it, as a version that took paths from it did
    if not os.path.exists(joined) and os.path.exists(path) and not _same_file(joined, path):
        raise ConfigError(
            f"{key}: {path!r} is taken from the settings file's folder ({joined!r}, not there), but {path!r} of"
            f" the working directory is there: write it from {str(base)!r} or absolute (README, Settings)"
        )
    return joined


def _same_file(one: str, other: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)


def _holds(tree: Any, loc: tuple[str, ...]) -> bool:
    for key in loc:
        if not isinstance(tree, Mapping) or key not in tree:
            return False
        tree = tree[key]
    return True


_NOT_A_SETTING = f"not a setting (a typo?); settings are {PREFIX}<KEY> or {PREFIX}<SECTION>__<KEY>, see README"


def _problem(error: ErrorDetails, raw: Any, config: Path | None) -> str:
    """One settings error, named by its source: the variable that set the key (the environment's, then
    `.env`'s), else the settings file and the key's line in it."""
    loc = tuple(error["loc"])
    variable = variable_for(loc)
    if variable is not None and str(loc[0]).upper().startswith(PREFIX):  # a `.env` variable naming no setting
        return f"{variable}: {_NOT_A_SETTING}"
    if variable is not None:
        return f"{variable}: {field_problem(error)}"
    line, _ = locate(raw, loc) if raw is not None else (None, None)
    where = f"{config}:{line}" if config and line else str(config or "settings")
    return f"{where}: {field_problem(error)}"
