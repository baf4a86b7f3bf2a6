"""news-monitor: watch folders of dated articles, match YAML rules, deliver signed webhooks."""

import contextlib
import signal
import sys
import threading

__version__ = "0.1.0"

HELD_SIGHUP = threading.Event()  # a SIGHUP (a reload) that came before the daemon could act on it


def hold_sighup() -> None:
    """Keep a SIGHUP for later instead of its default action, which ends the process: the daemon reloads
    its rules once it runs. Set as the package is imported by `news-monitor run`, before the slow imports."""
    with contextlib.suppress(ValueError):  # not the main thread: no signals here to hold
        signal.signal(signal.SIGHUP, lambda *_: HELD_SIGHUP.set())


if sys.argv[1:2] == ["run"]:
    hold_sighup()
