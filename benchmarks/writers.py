"""Writer soak: every common way of putting articles into the folder, for minutes, against the real daemon
with `reconcile_interval: 5s` (a scan every 5 s that would catch any half-written file), issue 12.

Round after round, each writer puts one article of its own in the watched folder: cp, mv, rsync, tar, unzip,
curl -o from a slow server (three parts 1.5 s apart), a script that writes in chunks with pauses longer
than `settle`, sed -i and vim (an article, then its edit: two versions), git clone. At the end it prints the
versions expected and received, truncated or unexpected reads (a version nobody wrote: a part of a file or
a temporary name), duplicates (an alert under two ids, or an id twice) and stray temporary names: all 0.

    .venv/bin/python benchmarks/writers.py [--seconds 180] [--quick]
"""

from __future__ import annotations

import collections
import hashlib
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common import Daemon, Row, arguments, command_line, print_table, progress, receiver, scratch, shipped_rules_text

TEXT = "date 2022-01-18 Bericht {token}. Bijna achtduizend mensen zijn gearresteerd. Het dodental is 164.\n"
FILLER = "Verder nieuws uit de regio. " * 10_000  # 280 KB: a slow download writes it in parts
PAUSING = """
import sys, time
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for part in sys.argv[2:]:
        out.write(part); out.flush(); time.sleep(1.5)
"""
Versions = list[tuple[str, str]]  # (file name, text) of every version a writer made


class SlowServer(ThreadingHTTPServer):
    """Serves `bodies[path]` in three parts 1.5 s apart."""

    bodies: dict[str, bytes] = {}  # noqa: RUF012

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = SlowServer.bodies[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                third = len(body) // 3 + 1
                for start in range(0, len(body), third):
                    self.wfile.write(body[start : start + third])
                    self.wfile.flush()
                    time.sleep(1.5)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def sh(*command: str, cwd: Path | None = None) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=120)


class Writers:
    """Each method writes one article (its token in the text) the way one program does, and says what it
    wrote."""

    def __init__(self, watched: Path, work: Path, server: SlowServer) -> None:
        self.watched, self.work, self.server = watched, work, server

    def available(self) -> dict[str, Callable[[str], Versions]]:
        kinds = ["cp", "mv", "rsync", "tar", "unzip", "curl", "pausing", "sed", "vim", "git"]
        return {kind: getattr(self, kind) for kind in kinds if kind == "pausing" or shutil.which(kind)}

    def _staged(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text, encoding="utf-8")
        return path

    def _copy(self, program: str, token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token)
        destination = str(self.watched) + "/" if program == "rsync" else str(self.watched / name)
        sh(program, str(self._staged(name, text)), destination)
        return [(name, text)]

    def cp(self, token: str) -> Versions:
        return self._copy("cp", token)

    def mv(self, token: str) -> Versions:
        return self._copy("mv", token)

    def rsync(self, token: str) -> Versions:
        return self._copy("rsync", token)

    def tar(self, token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token)
        (self.work / token).mkdir()
        (self.work / token / name).write_text(text, encoding="utf-8")
        sh("tar", "-cf", str(self.work / f"{token}.tar"), "-C", str(self.work / token), name)
        sh("tar", "-xf", str(self.work / f"{token}.tar"), "-C", str(self.watched))
        return [(name, text)]

    def unzip(self, token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token)
        with zipfile.ZipFile(self.work / f"{token}.zip", "w") as archive:
            archive.writestr(name, text)
        sh("unzip", "-q", "-o", str(self.work / f"{token}.zip"), "-d", str(self.watched))
        return [(name, text)]

    def curl(self, token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token) + FILLER
        SlowServer.bodies[f"/{token}"] = text.encode()
        url = f"http://127.0.0.1:{self.server.server_address[1]}/{token}"
        sh("curl", "-s", "-o", str(self.watched / name), url)
        return [(name, text)]

    def pausing(self, token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token) + FILLER
        third = len(text) // 3
        sh(
            sys.executable,
            "-c",
            PAUSING,
            str(self.watched / name),
            text[:third],
            text[third : 2 * third],
            text[2 * third :],
        )
        return [(name, text)]

    def _edit(self, program: list[str], token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token)
        (self.watched / name).write_text(text, encoding="utf-8")
        time.sleep(1.5)  # the first version is read before the edit
        sh(*program, str(self.watched / name))
        return [(name, text), (name, text.replace("164", "225"))]

    def sed(self, token: str) -> Versions:
        return self._edit(["sed", "-i", "s/164/225/"], token)

    def vim(self, token: str) -> Versions:
        return self._edit(["vim", "-n", "-u", "NONE", "-es", "-c", "%s/164/225/", "-c", "wq"], token)

    def git(self, token: str) -> Versions:
        name, text = f"{token}.txt", TEXT.format(token=token)
        repo = self.work / token
        repo.mkdir()
        (repo / name).write_text(text, encoding="utf-8")
        sh("git", "init", "-q", "-b", "main", cwd=repo)
        sh("git", "add", name, cwd=repo)
        sh("git", "-c", "user.name=s", "-c", "user.email=s@s", "commit", "-q", "-m", token, cwd=repo)
        sh("git", "clone", "-q", str(repo), str(self.watched / token))
        return [(name, text)]


def main() -> None:
    args = arguments(__doc__ or "", lambda parser: parser.add_argument("--seconds", type=float, default=180))
    seconds = 30.0 if args.quick else args.seconds
    expected: Versions = []
    with scratch("writers", args.keep) as root, receiver() as server:
        settings = {"watch": {"settle": "2s", "reconcile_interval": "5s"}}
        daemon = Daemon(root / "daemon", shipped_rules_text(server.url + "/hooks/newsroom"), settings=settings)
        daemon.start()
        slow = SlowServer()
        kinds = Writers(daemon.watched, root / "work", slow).available()
        progress(f"writers: {', '.join(kinds)}; {seconds:.0f} s")
        started, rounds = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            (root / "work").mkdir(exist_ok=True)
            threads = []
            for kind, write in kinds.items():  # all writers at once, as in a real folder
                token = f"{kind}-{rounds:04d}"
                thread = threading.Thread(target=lambda w=write, t=token: expected.extend(w(t)))
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join()
            rounds += 1
            shutil.rmtree(root / "work")
        progress(f"{rounds} rounds, {len(expected)} versions written; waiting for the last alerts")
        wait_for_quiet(daemon, server, len(expected))
        daemon.stop()
        slow.shutdown()
        slow.server_close()
        report(expected, server.received, rounds, kinds)


def wait_for_quiet(daemon: Daemon, server: object, versions: int) -> None:
    """Until two scans have passed with nothing new arriving (at most 120 s)."""
    deadline, last, quiet = time.monotonic() + 120, -1, 0.0
    while time.monotonic() < deadline:
        count = len(server.received)  # type: ignore[attr-defined]
        if count == last and daemon.open_deliveries() == 0:
            if time.monotonic() - quiet > 12:
                return
        else:
            last, quiet = count, time.monotonic()
        time.sleep(0.5)


def report(expected: Versions, received: list[object], rounds: int, kinds: dict[str, object]) -> None:
    want = {(name, hashlib.sha256(text.encode()).hexdigest()) for name, text in expected}
    names = {name for name, _ in expected}
    got: collections.Counter[tuple[str, str, str]] = collections.Counter()
    ids: collections.Counter[str] = collections.Counter()
    for request in received:
        data = request.json()["data"]  # type: ignore[attr-defined]
        got[Path(data["article"]["path"]).name, data["article"]["content_hash"], data["rule"]] += 1
        ids[request.headers.get("webhook-id", "")] += 1  # type: ignore[attr-defined]
    versions = {(name, digest) for name, digest, _ in got}
    rows = [
        Row("writers", float(len(kinds)), note=", ".join(kinds)),
        Row("rounds", float(rounds)),
        Row("versions written", float(len(want))),
        Row("versions alerted", float(len(versions & want)), "", float(len(want)), kind="eq"),
        Row("truncated or unexpected reads", float(len(versions - want)), "", 0.0, kind="eq"),
        Row(
            "duplicates",
            float(sum(n - 1 for n in got.values()) + sum(n - 1 for n in ids.values())),
            "",
            0.0,
            kind="eq",
        ),
        Row("stray temporary names", float(len({name for name, _ in versions} - names)), "", 0.0, kind="eq"),
    ]
    print_table("Writer soak through the real daemon (reconcile every 5 s)", rows, command_line())


if __name__ == "__main__":
    main()
