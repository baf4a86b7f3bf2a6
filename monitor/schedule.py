"""Wake-ups, with APScheduler 3.x's AsyncIOScheduler and its in-memory job store only.

Jobs hold no state: each one reads what is due from the store, so a crash between a wake-up and its
work loses nothing. Jobs: one digest flush per digest rule (cron, in the configured time zone), the
reconcile scan, and the retry sweep that wakes the deliverer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)
DIGEST_PREFIX = "digest:"


def cron(expression: str, zone: tzinfo) -> CronTrigger:
    """A crontab expression: 5 fields, or 6 with seconds first (`*/10 * * * * *`). ValueError if invalid."""
    fields = expression.split()
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=zone
        )
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday) or 6 (seconds first), got {len(fields)}")
    return CronTrigger.from_crontab(expression, timezone=zone)


class Wakeups:
    """The daemon's timed jobs (digest flushes, reconcile scans, retry sweeps, pruning) on one AsyncIOScheduler."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.scheduler = AsyncIOScheduler(timezone=zone, job_defaults={"coalesce": True, "max_instances": 1})

    def start(self) -> None:
        self.scheduler.start()

    def running(self) -> bool:
        return bool(self.scheduler.running)

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def every(self, name: str, interval: timedelta, job: Callable[[], Awaitable[None]]) -> None:
        trigger = IntervalTrigger(seconds=max(interval.total_seconds(), 0.05), timezone=self.zone)
        self.scheduler.add_job(job, trigger, id=name, name=name, replace_existing=True, misfire_grace_time=None)

    def digests(self, crons: dict[str, str], flush: Callable[[str], Awaitable[None]]) -> None:
        """One cron job per digest rule (`crons`: rule name to its `schedule:`); replaces a previous rule set's."""
        for job in self.scheduler.get_jobs():
            if job.id.startswith(DIGEST_PREFIX) and job.id[len(DIGEST_PREFIX) :] not in crons:
                job.remove()
        for rule, expression in crons.items():
            self.scheduler.add_job(
                flush,
                cron(expression, self.zone),
                args=[rule],
                id=DIGEST_PREFIX + rule,
                name=f"digest {rule}",
                replace_existing=True,
                misfire_grace_time=None,
            )
