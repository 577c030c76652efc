"""Idempotent web forms (broadcaster/web/idempotency.py): the same form sent twice — a double tap, a browser
retrying after a dropped connection — is done once; the second answer leads where the first did."""

from __future__ import annotations

import re
import threading

from sqlalchemy import func, select
from test_emergency import LAYOUT, TEXT, commands, ward  # noqa: F401 - the fixture
from test_panel import csrf, login

from broadcaster.models import Alert, Announcement, FormSubmission


def form_key(client, url: str) -> str:
    match = re.search(r'name="form_key" value="([^"]+)"', client.get(url).text)
    assert match, f"no one-time form key on {url}"
    return match.group(1)


def count(service, model) -> int:
    with service.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_an_emergency_sent_twice_goes_out_once(client, ward):  # noqa: F811
    login(client)
    data = {"csrf_token": csrf(client, "/emergency"), "form_key": form_key(client, "/emergency"), "mode": "live",
            "title": "Cháy chợ", "source": "text", "text": TEXT, "zones": ["to-3"], "repeat": "1"}
    first = client.post("/emergency", data=data)
    assert first.status_code == 302, first.text[:500]
    sent = len(commands(ward))
    assert sent > 0
    second = client.post("/emergency", data=data)  # the double tap
    assert second.status_code == 303 and second.location == first.location
    assert count(ward, Alert) == 1 and len(commands(ward)) == sent
    assert "không có gì bị làm hai lần" in client.get(second.location).text
    # a new page has a new key: a second emergency on purpose goes out
    data["form_key"] = form_key(client, "/emergency")
    assert client.post("/emergency", data=data).status_code == 302
    assert count(ward, Alert) == 2


def test_a_refused_form_can_be_corrected_and_sent_with_the_same_key(client, ward):  # noqa: F811
    login(client)
    data = {"csrf_token": csrf(client, "/announcements/new"), "form_key": form_key(client, "/announcements/new"),
            "title": "", "text": TEXT}
    assert client.post("/announcements/new", data=data).status_code == 400  # no title: the form comes back
    assert count(ward, FormSubmission) == 0  # the key is free again
    data["title"] = "Tiêm phòng"
    assert client.post("/announcements/new", data=data).status_code == 302
    assert client.post("/announcements/new", data=data).status_code == 303
    assert count(ward, Announcement) == 1


def test_two_simultaneous_sends_make_one(client, ward, app):  # noqa: F811
    """Two requests racing (a double tap on a slow connection): exactly one runs, the other gets its answer."""
    login(client)
    data = {"csrf_token": csrf(client, "/announcements/new"), "form_key": form_key(client, "/announcements/new"),
            "title": "Họp tổ dân phố", "text": TEXT}
    # the same browser session for both: the session cookie and Flask-Login's remember cookie
    names = (app.config["SESSION_COOKIE_NAME"], "remember_token")
    cookies = {name: cookie.value for name in names if (cookie := client.get_cookie(name)) is not None}
    assert app.config["SESSION_COOKIE_NAME"] in cookies
    statuses: list[int] = []

    def send() -> None:
        other = app.test_client()
        for key, value in cookies.items():
            other.set_cookie(key, value)
        statuses.append(other.post("/announcements/new", data=data).status_code)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [302, 303]
    assert count(ward, Announcement) == 1


def test_a_key_of_another_user_is_not_shared(client, ward, app):  # noqa: F811
    """The key is per user: the same value sent by someone else is a new submission (and never her answer)."""
    login(client)
    data = {"csrf_token": csrf(client, "/announcements/new"), "form_key": "same-key-on-purpose",
            "title": "Một", "text": TEXT}
    assert client.post("/announcements/new", data=data).status_code == 302
    other = app.test_client()
    login(other, "can-bo", "password-123")
    data["csrf_token"] = csrf(other, "/announcements/new")
    assert other.post("/announcements/new", data=data).status_code == 302
    assert count(ward, Announcement) == 2
