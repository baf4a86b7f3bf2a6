"""A small webhook receiver on 127.0.0.1: the demo's printer and the tests' real HTTP peer.

It records every request (headers, body, arrival time) and answers with what `respond(request)` returns
(status, headers and optionally a body), 200 by default. It runs in a thread with the standard library's HTTP
server, nothing of ours in between.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.cli.console import printable


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]  # status, headers[, body]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the standard library's 5 resets connections when many senders connect at once


@dataclass
class Receiver:
    """Start with `start()`; `url` is then where to POST. `respond` may be replaced at any time."""

    host: str = "127.0.0.1"
    port: int = 0
    respond: Callable[[Received], Reply] = lambda _request: (200, {})
    on_request: Callable[[Received], None] | None = None
    tls: ssl.SSLContext | None = None  # a server context: HTTPS instead of HTTP
    received: list[Received] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: incomplete, as any server would refuse
                    self.close_connection = True
                    self.send_response(400)
                    self.send_header("content-length", "0")
                    self.send_header("connection", "close")
                    self.end_headers()
                    return
                request = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.time(),
                )
                status, headers, *rest = receiver.respond(request)
                answer = rest[0] if rest else b""
                with receiver._changed:
                    receiver.received.append(request)
                    receiver._changed.notify_all()
                if receiver.on_request is not None:
                    receiver.on_request(request)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        """Wait until `predicate(received)` holds, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True


def summarize_request(request: Received) -> str:
    """A human summary of one request, whatever the webhook's format: the generic envelope's alert or digest,
    a chat message's text (slack, discord, mattermost, teams), or any other JSON (a template's) as it came.
    Control characters are escaped: the text comes from article files."""
    try:
        body = request.json()
    except ValueError:
        return f"{printable(request.path)}: {len(request.body)} bytes (not JSON)"
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "type" in body:
        lines = _digest(body["data"]) if body["type"] == "alert.digest" else _alert(body["data"])
    elif isinstance(body, dict) and _CHAT_KEYS & body.keys():
        lines = [f"MESSAGE {printable(request.path)}"]
        lines += [f"    {printable(line)}" for text in _texts(body) for line in text.splitlines() if line.strip()]
    else:
        lines = [f"JSON {printable(request.path)}"]
        lines += [f"    {printable(line)}" for line in json.dumps(body, ensure_ascii=False, indent=2).splitlines()]
    lines.append(f"    webhook-id {printable(request.headers.get('webhook-id') or '-')}")
    return "\n".join(lines)


_CHAT_KEYS = {"text", "blocks", "content", "embeds", "attachments"}  # slack/mattermost, discord, teams
_TEXT_KEYS = ("text", "content", "title", "description")


def _alert(data: dict[str, Any]) -> list[str]:
    """The alert's head (with its language, count and the alert it updates, when it has them) and its first
    hits, each marked when its clause denies it."""
    from monitor.notify.formats.view import shown_count

    article = data.get("article") or {}
    head = f"ALERT {data.get('rule')}  [{article.get('date')}] {article.get('path')}  (fired by: {data.get('clause')})"
    if article.get("language"):
        head += f"  language {article['language']}"
    count = shown_count(data.get("count"), data.get("count_increase"))
    if count:
        head += f"  count {count}"
    if data.get("update_of"):
        head += f"  update of {data['update_of']}"
    hits = [hit for hit in data.get("hits", [])[:5] if isinstance(hit, dict)]
    denied = "  (negated)"
    return [printable(head)] + [
        f"    {printable(str(hit.get('snippet')))}{denied * bool(hit.get('negated'))}" for hit in hits
    ]


def _digest(data: dict[str, Any]) -> list[str]:
    head = f"DIGEST {data.get('rule')} at {data.get('slot')}: {_alerts(data.get('count'))}"
    return [printable(head)] + [f"    - {printable(_listed(alert))}" for alert in data.get("alerts", [])]


def _listed(alert: Any) -> str:
    """A digest's alert: its article's path, or its id alone when the store no longer had the alert (pruned)."""
    article = alert.get("article") if isinstance(alert, dict) else None
    if isinstance(article, dict):
        return str(article.get("path"))
    return f"{alert.get('alert_id')} (alert no longer stored)" if isinstance(alert, dict) else str(alert)


def _alerts(count: Any) -> str:
    return f"{count} alert" if count == 1 else f"{count} alerts"


def _texts(node: Any) -> Iterator[str]:
    """The human text of a chat message, in order: texts, titles, and `name: value` facts and fields."""
    if isinstance(node, list):
        for item in node:
            yield from _texts(item)
    elif isinstance(node, dict):
        label, value = node.get("name", node.get("title")), node.get("value")
        if isinstance(label, str) and isinstance(value, str):
            yield f"{label}: {value}"
            return
        for key, item in node.items():
            if key in _TEXT_KEYS and isinstance(item, str):
                yield item
            elif isinstance(item, dict | list):
                yield from _texts(item)
