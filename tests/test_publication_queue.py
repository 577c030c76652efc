"""Plans published in the background (broadcaster/publication_queue.py): the request that changed a schedule
answers at once, the plans follow, and how far they are is visible (``GET /api/v1/publication``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from stack import PanelStack, wait_for

from broadcaster.publication_queue import PublicationQueue
from devices.protocol import format_ts


class SlowPublish:
    """Stands for ``publish_plans``: records each pass, and blocks the first until released."""

    def __init__(self) -> None:
        self.passes: list[list[str] | None] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, node_ids: list[str] | None) -> list[str]:
        self.passes.append(node_ids)
        self.entered.set()
        self.release.wait(10)
        if node_ids == ["boom"] and self.passes.count(["boom"]) == 1:  # fails once, then the database is back
            raise RuntimeError("the database went away")
        return list(node_ids or ["all"])


def test_requests_made_during_a_pass_are_merged_into_the_next_one():
    publish = SlowPublish()
    queue = PublicationQueue(publish).start()
    try:
        first = queue.request(["a", "b"])
        assert publish.entered.wait(5)
        assert queue.status()["state"] == "publishing"
        queue.request(["c"])
        last = queue.request(["b", "d"])
        status = queue.status()
        assert status["queued_nodes"] == 3 and status["current"]["nodes"] == 2
        assert not queue.wait(first, timeout=0.05)  # the pass is still blocked
        publish.release.set()
        assert queue.wait(last, timeout=5)
        assert publish.passes == [["a", "b"], ["b", "c", "d"]]  # two passes for three requests
        status = queue.status()
        assert status["state"] == "idle" and status["last"]["published"] == 3 and status["last"]["error"] is None
    finally:
        publish.release.set()
        queue.stop()


def test_every_node_absorbs_the_rest_and_a_failed_pass_is_tried_again():
    publish = SlowPublish()
    queue = PublicationQueue(publish).start()
    try:
        queue.request(["x"])
        assert publish.entered.wait(5)
        queue.request(["y"])
        queue.request(None)
        publish.release.set()
        assert queue.wait(timeout=5)
        assert publish.passes == [["x"], None]
        ticket = queue.request(["boom"])
        assert not queue.wait(ticket, timeout=0.5)  # failed: not done, its nodes wait for the next try
        assert "database went away" in queue.status()["last"]["error"]
        assert queue.wait(ticket, timeout=5)  # tried again after the pause, and published
        assert publish.passes[-2:] == [["boom"], ["boom"]] and queue.status()["last"]["error"] is None
        queue.request(["z"])
        assert queue.wait(timeout=5) and publish.passes[-1] == ["z"]
        assert queue.wait(queue.request([]), timeout=0.01)  # nothing to publish: nothing to wait for
    finally:
        publish.release.set()
        queue.stop()


def test_stop_publishes_what_was_asked_for_first():
    publish = SlowPublish()
    publish.release.set()
    queue = PublicationQueue(publish).start()
    queue.request(["a"])
    queue.stop()
    assert publish.passes and publish.passes[-1] == ["a"]


@pytest.mark.mosquitto
def test_a_schedule_change_answers_before_its_plans_and_they_follow(tmp_path, mosquitto):
    """Through the real panel: the POST answers, ``/publication`` shows the pass, the nodes' plans change."""
    stack = PanelStack(tmp_path, mosquitto)
    stack.start_panel()
    try:
        stack.provision({"to-1": ["loa-01", "loa-02"]})
        service = stack.service
        assert stack.api("GET", "/publication", 200)["state"] == "idle"
        before = {n: service.get_node(n).plan_version for n in ("loa-01", "loa-02")}
        ann = stack.api("POST", "/announcements", 201, json={"title": "Thông báo", "text": "Họp tổ dân phố.",
                                                              "approve": True})
        start = format_ts(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
        stack.api("POST", "/schedules", 201, json={"announcement_id": ann["id"], "zones": ["to-1"],
                                                    "start_at": start})
        assert service.publication_queue is not None and service.publication_queue.wait(timeout=20)
        status = stack.api("GET", "/publication", 200)
        assert status["state"] == "idle" and status["last"]["nodes"] == 2 and status["last"]["published"] == 2
        after = {n: service.get_node(n).plan_version for n in ("loa-01", "loa-02")}
        assert all(after[n] > before[n] for n in after)
        wait_for(lambda: all(any(i["start"] == start for i in service.get_node(n).plan_payload["items"])
                             for n in after), 5, "the airing in both plans")
    finally:
        stack.stop_panel()
