"""Shared pieces of the benchmarks: a Dutch article and rule generator, the real daemon as a subprocess with
a real receiver, process memory, percentiles, the result table, and py-spy profiles of the daemon.

Nothing here is timed by itself; each benchmark script times what it measures.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The `monitor` package: the project's, or a candidate copy's (BENCH_SOURCE, see source_root()).
_SOURCE = str(Path(os.environ.get("BENCH_SOURCE") or ROOT).resolve())
if _SOURCE not in sys.path:
    sys.path.insert(0, _SOURCE)

import httpx  # noqa: E402

from monitor.receiver import Receiver  # noqa: E402

PYTHON = sys.executable


def source_root() -> Path:
    """Where the daemon's `monitor` package is imported from: the project, or BENCH_SOURCE (a folder that
    holds a `monitor` package) to measure a candidate change in a copy of the tree before it lands."""
    return Path(os.environ.get("BENCH_SOURCE") or ROOT).resolve()


SECRET = "whsec_" + base64.b64encode(b"news-monitor-bench-secret-32byte").decode()
HOOK_PATH = "/hooks/newsroom"

# --- vocabulary -----------------------------------------------------------------------------------------
# Dutch news words that none of the shipped rules matches (checked by `Corpus.check`).
FUNCTION = """de het een van en in is dat op te zijn met voor niet die aan er om ook als bij door maar uit dan nog
wel naar over tot zo heeft hebben werd worden wordt was waren deze dit na zal zou kan moet al meer
veel hun haar hij zij ze wij men tegen onder tussen zonder volgens sinds tijdens omdat terwijl
hoewel toen nu vandaag gisteren inmiddels echter bovendien daarom ook nog steeds vooral mogelijk
waarschijnlijk""".split()  # noqa: SIM905
CONTENT = """regering minister president premier kabinet parlement partij oppositie verkiezingen burgemeester
gemeente provincie politie rechter rechtbank advocaat officier justitie onderzoek rapport verslag
bron woordvoerder persbureau krant omroep journalist demonstranten betogers protesten onlusten
staking vakbond werkgevers economie inflatie begroting belasting subsidie miljoen miljard euro
procent prijs prijzen energie gas stroom olie klimaat uitstoot water dijk rivier storm overstroming
regen droogte landbouw boeren stikstof natuur school leraren studenten universiteit zorg ziekenhuis
artsen patiënten vaccin virus besmettingen woning huur bouw infrastructuur spoor trein vliegveld
haven verkeer ongeluk brand explosie slachtoffers gewonden hulpdiensten brandweer leger soldaten
troepen grens oorlog vrede akkoord overleg top gesprek bezoek verklaring besluit wet voorstel motie
debat stemming meerderheid coalitie steun kritiek zorgen vragen antwoord maatregelen plan plannen
jaar maand week dag ochtend avond nacht land stad dorp regio wereld bevolking inwoners mensen
kinderen families bedrijven banen werkloosheid markt handel export import bank rente schulden
pensioen zei meldde kondigde verklaarde liet weten besloot stelde vroeg antwoordde benadrukte
waarschuwde ontkende bevestigde reageerde vertrok kwam ging bleef stond lag zag gaf nam vond hield
sprak schreef riep werkte leidde volgde groot klein nieuw oud belangrijk moeilijk duidelijk
onduidelijk snel langzaam hoog laag sterk zwak politieke economische sociale internationale
nationale lokale regionale officiële voormalige huidige vorige volgende eerste laatste zware lichte
grote kleine café ruïne coördinatie reünie privé één""".split()  # noqa: SIM905
PLACES = """Amsterdam Rotterdam Utrecht Eindhoven Groningen Tilburg Almere Breda Nijmegen Arnhem Haarlem
Enschede Maastricht Leiden Delft Zwolle Brussel Antwerpen Gent Luik Berlijn Parijs Londen Madrid
Rome Wenen Warschau Kiev Moskou Minsk Almaty Astana Bisjkek Tasjkent Ankara Caïro Beiroet Bagdad
Teheran Kaboel Peking Tokio Seoul Delhi Jakarta Nairobi Lagos Washington Ottawa Brasilia Lima
Santiago Bogota Havana Dakar Accra Praag Boedapest Boekarest Sofia Athene Lissabon Dublin Oslo
Stockholm Helsinki Kopenhagen Riga Tallinn Vilnius Tbilisi Jerevan Bakoe Doesjanbe Asjchabad Oeral
Karaganda Sjymkent Aktobe Taraz Pavlodar""".split()  # noqa: SIM905
FIRST = """Jan Piet Kees Anna Maria Sanne Lotte Ahmed Mohammed Fatima Karim Olga Ivan Sergej Nursultan Kassym
Emma Sophie Daan Lucas Thomas Ruben Eva Noor Sara Lisa Mark Willem Hugo Sigrid Kajsa Dilan Jesse Rob
Frans Geert Caroline Wopke Mona Hanneke Joost Bas Femke Ilse Marloes Yusuf Aylin Bram Floor Tijs
Merel""".split()  # noqa: SIM905
LAST = """Jansen Vries Dijk Bakker Visser Smit Meijer Boer Mulder Groot Bos Vos Peters Hendriks Leeuwen Dekker
Brouwer Wit Dijkstra Smits Graaf Meer Linden Kok Jacobs Haan Vermeulen Berg Heijden Schouten Beek
Willems Vliet Ven Hoekstra Maas Verhoeven Koster Dam Wal Prins Blom Huisman Peeters Jong Masimov
Tokajev Nazarbajev Petrov Ivanov Kovalenko Sokolov Aliev Nurlanov Sultanov Omarov Bekov Yilmaz Demir
Kaya Çelik Öztürk Janssens Maes Claes Goossens Wouters Mertens Dubois Lambert Martin Moreau""".split()  # noqa: SIM905
ROOTS = """water woning markt school zorg energie belasting huur bouw spoor haven grond lucht zee land stad
dorp brug weg auto fiets bus trein post bank geld werk loon prijs kosten winst handel data net
stroom gas olie kolen wind zon warmte klimaat natuur bos veld dijk rivier kust strand berg tuin park
boer vee melk graan voedsel drank vis vlees brood suiker zout koffie thee wijn bier tabak sport
voetbal tennis muziek film kunst boek krant radio nieuws pers recht wet straf boete cel hof raad
kamer partij vak bond club team groep leger vloot wacht grens douane macht staat volk leider hoofd
kind jeugd ouder student leraar arts zuster ziekte virus vaccin test medicijn huis flat kantoor
fabriek winkel hotel kerk museum theater station plein straat gracht kanaal sluis gemaal molen toren
muur dak deur raam vloer chip accu batterij kabel pijp tunnel vlucht ramp crisis hulp steun plan
wijk buurt regio euro koers beurs fonds schuld rente pensioen uitkering asiel vluchteling migratie
arbeid taal cultuur erfgoed monument storm hitte regen sneeuw ijs vorst""".split()  # noqa: SIM905
# One sentence per shipped rule: a matching article contains exactly one of them, so it raises one alert.
TRIGGERS = {
    "hoogverraad": "De voormalige minister wordt verdacht van hoogverraad.",
    "arrestaties": "Volgens de politie zijn tientallen betogers gearresteerd.",
    "dodental": "Het dodental is volgens de hulpdiensten opgelopen tot {n}.",
    "csto": "Troepen van de CSTO zijn in {place} aangekomen.",
}


def compounds(limit: int | None = None) -> list[str]:
    """Dutch-shaped compounds of two roots (woningmarkt, zorgkosten): the rare words of rules and articles."""
    common = {w.casefold() for w in CONTENT + FUNCTION + PLACES + FIRST + LAST}
    out = [a + b for a in ROOTS for b in ROOTS if a != b and a + b not in common]
    return out if limit is None else out[:limit]


@dataclass
class Corpus:
    """Deterministic Dutch articles of about 2.5 KB, like the seeds: a pool of sentences, recombined."""

    seed: int = 7
    pool_size: int = 4000
    sentences: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        rare = compounds()
        for _ in range(self.pool_size):
            words = [rng.choice(FUNCTION if rng.random() < 0.45 else CONTENT) for _ in range(rng.randint(7, 18))]
            for pool, chance in ((PLACES, 0.35), (rare, 0.12)):
                if rng.random() < chance:
                    words.insert(rng.randrange(1, len(words)), rng.choice(pool))
            if rng.random() < 0.03:
                words.insert(rng.randrange(1, len(words)), f"{rng.choice(FIRST)} {rng.choice(LAST)}")
            sentence = " ".join(words)
            self.sentences.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))

    def article(self, number: int, rule: str | None, run: str = "") -> str:
        """Article `number`; with `rule`, it carries that shipped rule's trigger sentence once."""
        rng = random.Random(f"{self.seed}-{run}-{number}")
        picked = [rng.choice(self.sentences) for _ in range(rng.randint(16, 26))]
        picked.insert(
            rng.randrange(1, len(picked)),
            f"Het bericht met volgnummer {run}{number} werd om "
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} verstuurd.",
        )
        if rule is not None:
            trigger = TRIGGERS[rule].format(n=rng.randint(5, 400), place=rng.choice(PLACES))
            picked.insert(rng.randrange(1, len(picked)), trigger)
        paragraphs, i = [], 0
        while i < len(picked):
            step = rng.randint(3, 5)
            paragraphs.append(" ".join(picked[i : i + step]))
            i += step
        day = 1 + number % 28
        header = rng.choice(
            [
                f"date 2022-01-{day:02d}",
                f"date 2022-01-{day:02d}",
                "date 2022-01",
                f"date 2022-01-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
            ]
        )
        return header + "\n" + "\n\n".join(paragraphs) + "\n"

    def check(self) -> None:
        """The shipped rules match no pool sentence and each trigger exactly its own rule."""
        from monitor.rules import load_rules

        engine = load_rules(ROOT / "config" / "rules.yaml", environ={}).engine
        for sentence in self.sentences:
            found = [m.rule for m in engine.match_text(sentence)]
            assert not found, f"pool sentence matches {found}: {sentence}"
        for rule, trigger in TRIGGERS.items():
            found = [m.rule for m in engine.match_text(trigger.format(n=12, place="Almaty"))]
            assert found == [rule], f"trigger of {rule} matches {found}"


def plan(count: int, match_every: int = 3) -> list[str | None]:
    """Which shipped rule each article triggers: every `match_every`-th one, the rules in turn."""
    rules = list(TRIGGERS)
    return [rules[(i // match_every) % len(rules)] if i % match_every == 0 else None for i in range(count)]


def write_articles(
    corpus: Corpus, folder: Path, count: int, run: str, start: int = 0, per_folder: int | None = None
) -> dict[str, str | None]:
    """Write `count` articles into `folder` (in subfolders of `per_folder` if given); {file name: rule}."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str | None] = {}
    for i, rule in enumerate(plan(count), start):
        name = f"{run}{i:06d}.txt"
        target = folder if per_folder is None else folder / f"part{i // per_folder:03d}"
        if per_folder is not None and i % per_folder == 0:
            target.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(corpus.article(i, rule, run), encoding="utf-8")
        made[name] = rule
    return made


# --- rules ----------------------------------------------------------------------------------------------
def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def shipped_rules_text(url: str) -> str:
    """config/rules.yaml with the newsroom webhook pointed at `url`, signed."""
    text = (ROOT / "config" / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace("${NEWSROOM_WEBHOOK_URL:-http://127.0.0.1:8788/hooks/newsroom}", url)
    return text.replace("${NEWSROOM_WEBHOOK_SECRET:-}", SECRET)


def generated_rules_text(count: int, url: str, seed: int = 11) -> str:
    """The four shipped rules plus `count - 4` generated ones of the shapes users write, as YAML."""
    rng = random.Random(seed)
    rare = compounds()
    rng.shuffle(rare)
    lists = {
        f"lijst{k:03d}": [rng.choice(rare) + ("*" if rng.random() < 0.3 else "") for _ in range(rng.randint(4, 8))]
        for k in range(60)
    }
    lines = ["version: 1", "lists:", "  arrest: ['*arresta*', '*arrestee*', '*arrester*']"]
    for name, items in lists.items():
        lines.append(f"  {name}: [{', '.join(_q(i) for i in items)}]")
    lines += ["webhooks:", "  newsroom:", f"    url: {url}", f"    secret: {SECRET}", "    format: generic", "rules:"]
    shipped = shipped_rules_text(url).split("\nrules:\n", 1)[1]
    lines.append(shipped.rstrip("\n"))
    for i in range(max(0, count - len(TRIGGERS))):
        lines += _generated_rule(i, rng, rare, list(lists))
    return "\n".join(lines) + "\n"


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _generated_rule(i: int, rng: random.Random, rare: list[str], lists: list[str]) -> list[str]:
    word = lambda: rng.choice(rare)  # noqa: E731
    place = lambda: rng.choice(PLACES)  # noqa: E731
    shapes: list[tuple[float, Callable[[], str]]] = [
        (0.22, word),
        (0.13, lambda: f'"{_person(rng)}"'),
        (0.10, lambda: word() + "*"),
        (0.03, lambda: f"*{word()}*"),
        (0.14, lambda: f"{word()} AND ({place()} OR {place()})"),
        (0.07, lambda: f"{word()} NOT {rng.choice(CONTENT)}"),
        (0.10, lambda: f'{word()} OR {word()} OR "{_person(rng)}"'),
        (0.05, lambda: f'"{rng.choice(LAST)} {word()}"~5'),
        (0.05, lambda: f"@{rng.choice(lists)} AND {place()}"),
        (0.08, lambda: f'("{rng.choice(CONTENT)} {word()}" OR {word()}*) AND NOT ({rng.choice(CONTENT)} OR {place()})'),
        (0.03, lambda: f"{rng.choice(CONTENT)} AND {word()}"),
    ]
    pick = rng.random()
    make = shapes[-1][1]
    for weight, shape in shapes:
        pick -= weight
        if pick <= 0:
            make = shape
            break
    query = make()
    rule = [f"  - name: r{i:06d}", f"    query: {_q(query)}", "    notify: [newsroom]"]
    roll = rng.random()
    if roll < 0.01:
        rule.append(f"    schedule: {_q(f'{rng.randint(0, 59)} */{rng.choice([1, 2, 4, 6])} * * *')}")
    elif roll < 0.06:
        rule.append("    realert: 6h")
    if 0.06 <= roll < 0.09 and '"' not in query and "*" not in query:
        rule.append("    stem: true")
    return rule


# --- the daemon and its receiver -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_yaml(home: Path, watched: Path, port: int, **overrides: Any) -> str:
    """The shipped config/monitor.yaml with our folder, state, port and a JSON log; `overrides` per section."""
    config: dict[str, Any] = {
        "rules_file": str(home / "rules.yaml"),
        "timezone": "Europe/Amsterdam",
        "watch": {"folders": [str(watched)], "observer": "native", "settle": "2s", "reconcile_interval": "5m"},
        "state": {"url": f"sqlite:///{home / 'state' / 'monitor.db'}"},
        "delivery": {"concurrency": 8, "shutdown_grace": "10s"},
        "http": {"port": port},
        "log": {"level": "INFO", "format": "json"},
    }
    for section, values in overrides.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    return json.dumps(config, indent=2)  # JSON is YAML


@dataclass
class Daemon:
    """`news-monitor run` (as `python -m monitor run`) on `home`; `profile`: a py-spy output file to record."""

    home: Path
    rules_text: str
    settings: dict[str, Any] = field(default_factory=dict)
    profile: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.watched = self.home / "incoming"
        self.watched.mkdir(parents=True, exist_ok=True)
        self.db = self.home / "state" / "monitor.db"
        (self.home / "rules.yaml").write_text(self.rules_text, encoding="utf-8")
        (self.home / "monitor.yaml").write_text(settings_yaml(self.home, self.watched, self.port, **self.settings))

    @property
    def log(self) -> Path:
        return self.home / "daemon.log"

    child: int | None = None  # the daemon's pid when py-spy started it

    @property
    def pid(self) -> int:
        if self.child is not None:
            return self.child
        assert self.proc is not None
        return self.proc.pid

    @property
    def command(self) -> list[str]:
        return [PYTHON, "-m", "monitor", "run", "--config", str(self.home / "monitor.yaml")]

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(source_root())}
        with self.log.open("ab") as log:
            self.started_at = time.perf_counter()
            return subprocess.Popen(command, cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> float:
        """Start the daemon and wait for /readyz; the seconds from start to ready."""
        self.proc = self._spawn(self.command)
        return self.wait_ready()

    def start_recorded(self, rate: int = 250) -> None:
        """Start the daemon under `py-spy record` (to profile the start-up too); then `wait_ready()`."""
        assert self.profile is not None
        spy = [
            _py_spy(),
            "record",
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(self.profile),
            "--nonblocking",
            *_py_spy_extra(),
            "--",
        ]
        self.proc = self.spy = self._spawn(spy + self.command)
        deadline = time.monotonic() + 10
        while self.child is None and time.monotonic() < deadline:
            for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
                pids = task.read_text().split()
                if pids:
                    self.child = int(pids[0])
            time.sleep(0.005)

    def wait_ready(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"http://127.0.0.1:{self.port}/readyz").status_code == 200:
                        return time.perf_counter() - self.started_at
                time.sleep(0.01)
        raise RuntimeError(f"daemon not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def record(self, rate: int = 250) -> None:
        """Start py-spy on the running daemon (when `profile` is set); `stop()` writes the profile."""
        if self.profile is None or self.proc is None or self.spy is not None:
            return
        self.spy = subprocess.Popen(
            [
                _py_spy(),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--threads",
                "--output",
                str(self.profile),
                "--nonblocking",
                *_py_spy_extra(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def stop_recording(self) -> None:
        if self.spy is not None and self.child is None:
            self.spy.send_signal(signal.SIGINT)
            self.spy.wait(60)
            self.spy = None

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the daemon in MB, from /proc."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the daemon so far (all its threads), from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def stop(self, timeout: float = 60) -> int:
        self.stop_recording()
        if self.proc is None:
            return 0
        if self.child is not None:  # py-spy started it: stop the daemon, py-spy then writes the profile
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGTERM)
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log_problems(self) -> list[str]:
        """Log lines at warning level or above (JSON log)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                level = json.loads(line).get("level")
            except ValueError:
                level = "unparsed"
            if level in ("warning", "error", "critical", "unparsed"):
                found.append(line)
        return found

    # -- the state store, read-only -----------------------------------------------------------------------
    def query(self, sql: str) -> Any:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)) as conn:
                return conn.execute(sql).fetchone()[0]
        except sqlite3.Error:
            return None

    def ledger_count(self) -> int:
        return int(self.query("SELECT count(*) FROM files") or 0)

    def open_deliveries(self) -> int:
        return int(self.query("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'retrying')") or 0)


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class Arrival:
    webhook_id: str
    rule: str
    name: str  # article file name
    at: float


def arrivals(server: Receiver, path: str = HOOK_PATH) -> list[Arrival]:
    out = []
    for request in list(server.received):
        if request.path != path:
            continue
        data = request.json()["data"]
        out.append(
            Arrival(request.headers.get("webhook-id", ""), data["rule"], Path(data["article"]["path"]).name, request.at)
        )
    return out


def tally(expected: dict[str, str | None], got: list[Arrival]) -> tuple[int, int]:
    """(missing, duplicate) alerts: expected (file, rule) pairs not received; webhook-ids received twice."""
    wanted = {(name, rule) for name, rule in expected.items() if rule is not None}
    seen = {(a.name, a.rule) for a in got}
    ids = collections.Counter(a.webhook_id for a in got)
    pairs = collections.Counter((a.name, a.rule) for a in got)
    duplicates = sum(n - 1 for n in ids.values() if n > 1) + sum(n - 1 for n in pairs.values() if n > 1)
    unexpected = len(seen - wanted)
    return len(wanted - seen) + unexpected, duplicates


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# --- figures --------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Row:
    name: str
    value: float | None
    unit: str = ""
    target: float | None = None
    kind: str = "max"  # "max": value <= target is good; "min": value >= target is good; "eq": value == target
    note: str = ""

    def ratio(self) -> str:
        if self.target is None or self.value is None:
            return ""
        if self.kind == "eq":
            return ""
        if self.target == 0:
            return ""
        return f"{self.value / self.target:.2f}"

    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.value is None:
            return "MISS"
        ok = {"max": self.value <= self.target, "min": self.value >= self.target, "eq": self.value == self.target}
        return "ok" if ok[self.kind] else "MISS"

    def cells(self) -> list[str]:
        sign = {"max": "<=", "min": ">=", "eq": "=="}[self.kind]
        target = "" if self.target is None else f"{sign} {_num(self.target)} {self.unit}".rstrip()
        value = "n/a" if self.value is None else f"{_num(self.value)} {self.unit}".rstrip()
        return [self.name, value, target, self.ratio(), self.verdict(), self.note]


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


_LOAD_AT_START = load_average()


def _tree() -> str:
    """The git commit of the project, and whether `monitor/` has uncommitted changes."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "monitor"], capture_output=True, text=True
    )
    return commit.stdout.strip() + ("+local changes in monitor/" if dirty.stdout.strip() else "")


_TREE_AT_START = _tree()


def _monitor_changed(start: str) -> bool:
    """Whether `monitor/` now differs from commit `start` (committed since, or uncommitted)."""
    return (
        subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", start, "--", "monitor"], check=False).returncode != 0
    )


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    tree, now = _TREE_AT_START, _tree()
    if now != tree and "+" not in tree and _monitor_changed(tree):
        tree += f" (monitor/ changed, now {now}, during the run)"
    source = "" if source_root() == ROOT else f", daemon from BENCH_SOURCE={source_root()}"
    return (
        f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, {platform.system()}, git {tree}{source}"
    )


def print_table(title: str, rows: Sequence[Row], command: str) -> None:
    header = ["metric", "value", "target", "ratio", "", "note"]
    table = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print()
    print(f"## {title}")
    print(f"machine: {machine()}")
    load = f"load average (1 min) at start {_LOAD_AT_START}, at end {load_average()}"
    print(f"{load} (a load above nproc means other work shared the CPUs)")
    print(f"command: {command}")
    print()
    for n, line in enumerate(table):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    misses = [row.name for row in rows if row.verdict() == "MISS"]
    print()
    print("result: " + ("all targets met" if not misses else "MISSED: " + ", ".join(misses)))
    sys.stdout.flush()


# --- command line and scratch space -------------------------------------------------------------------
def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller run for smoke use (about a minute)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (printed) for inspection")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles of the daemon into DIR (raw collapsed stacks + a summary)",
    )
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def command_line() -> str:
    return " ".join([f"{Path(PYTHON).parent.parent}/bin/python", *[_rel(a) for a in sys.argv]])


def _rel(arg: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(arg).resolve().relative_to(ROOT)) if arg.endswith(".py") else arg
    return arg


@contextlib.contextmanager
def scratch(name: str, keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"news-monitor-bench-{name}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"scratch folder kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- profiles -------------------------------------------------------------------------------------------
def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")


def _py_spy_extra() -> list[str]:
    """More py-spy options from BENCH_PY_SPY, e.g. `--gil` (only the thread holding the GIL) or `--idle`."""
    return os.environ.get("BENCH_PY_SPY", "").split()


def summarize_profile(raw: Path, top: int = 25, thread_filter: str | None = None) -> str:
    """The functions with the most samples (inclusive and self) from py-spy's raw collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    if not raw.exists():
        return f"(no profile written at {raw})"
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if thread_filter and thread_filter not in frames[0]:
            continue
        n = int(count)
        total += n
        names = [_frame(f) for f in frames[1:] if f]
        for name in set(names):
            inclusive[name] += n
        if names:
            own[names[-1]] += n
    lines = [f"{raw.name}: {total} samples"]
    lines.append("  inclusive:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)] if total else []
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)] if total else []
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`, without the line so that a function counts once."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    short = "/".join(Path(path).parts[-2:]) if path else ""
    return f"{name} ({short})"
