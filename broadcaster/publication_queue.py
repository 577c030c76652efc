"""Plans published in the background: the request that changed a schedule answers at once, the nodes' plans follow.

A change that affects 10,000 loudspeakers means 10,000 plans to build, sign, store and hand to the broker — seconds
of work that a ward officer's phone should not wait for (issue 16: the API answers in ≤ 200 ms whatever the fleet
size). :class:`PublicationQueue` is one worker thread per panel process: requests are merged (the nodes of several
quick changes are published in one pass; "every node" absorbs the rest), and :meth:`PublicationQueue.status` says
how far it is (``GET /api/v1/publication``). The plans themselves are built exactly as before
(``PanelService.publish_plans``, broadcaster/publication.py): the queue only decides *when*.

Without a queue (unit tests, CLI tools: no broker attached) ``PanelCore.publish_plans_soon`` publishes at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from devices.protocol import format_ts

log = logging.getLogger(__name__)
#: After a failed pass its nodes are tried again after this pause, doubled at each failure up to RETRY_MAX_S.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


class PublicationQueue:
    """One thread that publishes the plans of the nodes asked for, merging requests that arrive meanwhile."""

    def __init__(self, publish: Callable[[list[str] | None], list[str]]) -> None:
        self._publish = publish
        self._cond = threading.Condition()
        self._pending: set[str] | None = set()  # None: every node
        self._has_pending = False
        self._requested = 0  # ticket of the last request
        self._done = 0  # every request up to this ticket is published
        self._stopping = False
        self._failures = 0  # failed passes in a row (the pause before the next try grows with them)
        #: The thread has ended (after :meth:`stop`): a request from then on is published on the caller's thread,
        #: never left in a queue nobody reads (the app drops its queue only after ``stop`` returns).
        self._closed = False
        self._current: dict[str, Any] | None = None
        self._last: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="plan-publication", daemon=True)

    def start(self) -> PublicationQueue:
        self._thread.start()
        return self

    def request(self, node_ids: Iterable[str] | None) -> int:
        """Ask for the plans of ``node_ids`` (None: every node) to be rebuilt and published; returns a ticket
        for :meth:`wait`. Never blocks on the publication itself."""
        ids = None if node_ids is None else set(node_ids)
        with self._cond:
            if ids is not None and not ids:
                return self._done  # nothing to publish: nothing to wait for
            self._requested += 1
            ticket = self._requested
            if not self._closed:
                if ids is None or self._pending is None:
                    self._pending = None
                else:
                    self._pending |= ids
                self._has_pending = True
                self._cond.notify_all()
                return ticket
        # The thread has ended: publish at once, as without a queue (an error reaches the caller).
        try:
            self._publish(None if ids is None else sorted(ids))
        finally:
            with self._cond:
                self._done = max(self._done, ticket)
                self._cond.notify_all()
        return ticket

    def wait(self, ticket: int | None = None, timeout: float | None = None) -> bool:
        """Until the request with ``ticket`` (default: every request so far) is published; False on timeout."""
        with self._cond:
            target = self._requested if ticket is None else ticket
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def status(self) -> dict[str, Any]:
        """``state``: ``idle`` (nothing to do), ``queued`` (waiting for the pass in progress) or ``publishing``;
        ``queued_nodes`` (None: every node), the pass in progress and the last one finished."""
        with self._cond:
            queued = None if self._pending is None else len(self._pending)
            state = "publishing" if self._current is not None else "queued" if self._has_pending else "idle"
            return {"state": state, "queued_nodes": queued if self._has_pending else 0,
                    "current": dict(self._current) if self._current else None,
                    "last": dict(self._last) if self._last else None}

    def stop(self, timeout: float = 30.0) -> None:
        """Publish what is asked for, then end the thread."""
        with self._cond:
            self._stopping = True
            if self._thread.ident is None:  # never started: nothing will read the queue
                self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_pending or self._stopping)
                if not self._has_pending:
                    self._closed = True
                    return
                ids, ticket = self._pending, self._requested
                self._pending, self._has_pending = set(), False
                started = datetime.now(UTC)
                self._current = {"nodes": None if ids is None else len(ids), "started_at": format_ts(started)}
            t0 = time.monotonic()
            published: list[str] = []
            error = None
            try:
                published = self._publish(None if ids is None else sorted(ids))
            except Exception as exc:  # noqa: BLE001 — the thread must live on
                log.exception("background plan publication failed; its nodes are tried again")
                error = f"{exc.__class__.__name__}: {exc}"[:500]
            with self._cond:
                self._current = None
                self._last = {"nodes": None if ids is None else len(ids), "published": len(published),
                              "started_at": format_ts(started), "finished_at": format_ts(datetime.now(UTC)),
                              "seconds": round(time.monotonic() - t0, 3), "error": error}
                if error is None:
                    self._done = ticket
                    self._failures = 0
                else:
                    # A cancel or a rejection must reach the nodes: its nodes go back into the queue (merged with
                    # what arrived meanwhile) and are tried again after a growing pause; waiters keep waiting.
                    self._pending = None if ids is None or self._pending is None else self._pending | ids
                    self._has_pending = True
                    self._failures += 1
                    pause = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self._failures - 1))
                    self._cond.wait_for(lambda: self._stopping, pause)
                    if self._stopping and self._failures > 1:
                        self._done = ticket  # stopping, and it keeps failing: give up rather than hang the stop
                        self._has_pending = False
                self._cond.notify_all()
