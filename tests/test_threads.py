"""Story threads (monitor.notify.threads): outlets, and what makes a later match a follow-up."""

from __future__ import annotations

import pytest

from monitor.notify.threads import Followups, Seen, Thread, Update, follow_up, sent_follow_up, title

FOLLOWUPS = Followups.of(["/srv/in", "/srv/in/wire"], quiet=3600.0)


@pytest.mark.parametrize(
    ("path", "outlet"),
    [
        ("/srv/in/reuters/quake.txt", "reuters"),
        ("/srv/in/reuters/2023/02/quake.txt", "reuters"),
        ("/srv/in/quake.txt", None),
        ("/srv/in/wire/afp/quake.txt", "afp"),  # beneath the innermost watched folder
        ("/srv/in/wire/quake.txt", None),
        ("/srv/other/reuters/quake.txt", None),
        ("/srv/inbox/reuters/quake.txt", None),  # not beneath /srv/in
    ],
    ids=["outlet", "deeper", "direct", "inner-root", "inner-direct", "outside", "prefix-only"],
)
def test_an_outlet_is_the_first_folder_beneath_the_watched_one(path: str, outlet: str | None) -> None:
    assert FOLLOWUPS.outlet(path) == outlet


THREAD = Thread("msg_first", "quake: a.txt", 76.0, last_at=1000.0)
SEEN = Seen({"quake"}, {"reuters"})


@pytest.mark.parametrize(
    ("count", "rules", "outlet", "now", "expected"),
    [
        (76.0, ["quake"], "reuters", 9000.0, None),
        (None, ["quake"], None, 9000.0, None),
        (500.0, ["quake"], "reuters", 1001.0, Update(("count",), 76.0, 500.0)),
        (76.0, ["quake", "mourning", "aid"], "reuters", 1001.0, Update(("rule",), rules=("aid", "mourning"))),
        (76.0, ["quake"], "nos", 1001.0, None),  # a new outlet within the quiet period
        (76.0, ["quake"], "nos", 4600.0, Update(("outlet",), outlet="nos")),
        (76.0, ["quake"], None, 4600.0, None),  # no outlet: never a new one
        (
            900.0,
            ["quake", "aid"],
            "nos",
            4600.0,
            Update(("count", "rule", "outlet"), 76.0, 900.0, ("aid",), "nos"),
        ),
    ],
    ids=["nothing-new", "no-count", "count", "rule", "outlet-too-soon", "outlet", "no-outlet", "all"],
)
def test_a_later_match_follows_up_only_with_something_new(
    count: float | None, rules: list[str], outlet: str | None, now: float, expected: Update | None
) -> None:
    assert follow_up(THREAD, SEEN, count, rules, outlet, now, FOLLOWUPS.quiet) == expected


def test_a_thread_keeps_its_largest_count_and_last_sending() -> None:
    assert sent_follow_up(THREAD, 500.0, 2000.0) == Thread("msg_first", "quake: a.txt", 500.0, 2000.0)
    assert sent_follow_up(THREAD, 10.0, 2000.0) == Thread("msg_first", "quake: a.txt", 76.0, 2000.0)
    assert sent_follow_up(THREAD, None, 2000.0).best == 76.0
    assert title("quake", "/srv/in/reuters/a.txt") == "quake: a.txt"
