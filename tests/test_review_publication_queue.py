"""Review of issue 16: a plan change asked for once the publication thread has ended (the window between
``PublicationQueue.stop`` and ``app.stop_services`` dropping the queue) is published, never silently lost."""

from __future__ import annotations

import threading

from broadcaster.publication_queue import PublicationQueue


class Recorder:
    """Stands for ``publish_plans``: records each pass and on which thread it ran."""

    def __init__(self) -> None:
        self.passes: list[tuple[list[str] | None, str]] = []

    def __call__(self, node_ids: list[str] | None) -> list[str]:
        self.passes.append((node_ids, threading.current_thread().name))
        return list(node_ids or [])


def test_a_request_after_the_thread_ended_is_published_at_once():
    publish = Recorder()
    queue = PublicationQueue(publish).start()
    queue.stop()
    ticket = queue.request(["loa-01", "loa-02"])
    assert publish.passes == [(["loa-01", "loa-02"], threading.current_thread().name)]
    assert queue.wait(ticket, timeout=1)
    assert queue.wait(timeout=1)  # nothing left that nobody will publish


def test_a_request_to_a_queue_that_never_started_is_not_lost_after_stop():
    publish = Recorder()
    queue = PublicationQueue(publish)
    queue.stop()
    assert queue.wait(queue.request(None), timeout=1)
    assert publish.passes == [(None, threading.current_thread().name)]


def test_requests_before_stop_still_go_through_the_thread():
    publish = Recorder()
    queue = PublicationQueue(publish).start()
    assert queue.wait(queue.request(["a"]), timeout=5)
    queue.stop()
    assert publish.passes == [(["a"], "plan-publication")]
