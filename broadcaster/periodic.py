"""The one APScheduler (3.x) of the panel.

It is not a metronome: nodes play from their own plans. Its only job is to keep plans current —
every ``ROLLOVER_MINUTES`` it rebuilds each node's 48-hour plan and publishes those that changed
(schedules entering the window, finished ones leaving it).

Rules (field notes): exactly one scheduler per deployment — it runs in the leader only (broadcaster/leader.py:
started when this process gains the leadership, stopped at once when it loses it; the CLI never runs Flask's
reloader); a persistent
SQLAlchemy job store with an explicit job id and ``replace_existing=True``; jobs are importable
functions; a missed rollover is run once late (``coalesce=True``) within a grace of one period.
"""

from __future__ import annotations

import logging

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from broadcaster import emergency

log = logging.getLogger(__name__)

ROLLOVER_JOB_ID = "plan-rollover"
# Jobs in the persistent store are references to importable functions, so they find the live
# service through this module. One scheduler per process: set by start_scheduler only.
_service = None


def rollover_job() -> None:
    if _service is None:
        log.warning("rollover fired with no panel service attached")
        return
    published = _service.rollover()
    if published:
        log.info("rollover republished %d plan(s)", len(published))
    # An alert left "releasing" by a panel process that died while another one leads (several processes).
    emergency.recover_at_start(_service, emergency.RELEASE_STALE)


def start_scheduler(service, database_url: str, minutes: int) -> BackgroundScheduler:
    global _service
    _service = service
    # The job store is a table (apscheduler_jobs) of the panel's own database, SQLite or PostgreSQL; APScheduler
    # creates it itself (it is not in the migrations). Pre-ping: a restarted PostgreSQL server is reconnected to.
    store = SQLAlchemyJobStore(url=database_url,
                               engine_options={} if database_url.startswith("sqlite") else {"pool_pre_ping": True})
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": minutes * 60},
    )
    scheduler.add_job(
        "broadcaster.periodic:rollover_job",
        "interval",
        minutes=minutes,
        id=ROLLOVER_JOB_ID,
        replace_existing=True,
    )
    scheduler.start()
    return scheduler


def stop_scheduler(scheduler: BackgroundScheduler) -> None:
    global _service
    scheduler.shutdown(wait=False)
    _service = None
