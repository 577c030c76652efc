"""The notification centre (broadcaster/notifications.py): who is told what, the pages and the API, and the
outgoing webhook and e-mail received by real servers on loopback."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller
from people import As

from broadcaster import notifications, policy, tenancy
from broadcaster.models import Notification, User

TEXT = "Ủy ban nhân dân phường thông báo: sáng mai cắt nước từ 8 giờ đến 10 giờ."
PW = "password-123"


@pytest.fixture
def ward(client, service, api):
    """Officer canbo, leaders lanhdao / lanhdao2, a disabled leader, admin; another ward with its own leader;
    a province leader; zone to-1 with a node."""
    for name, role in (("canbo", "officer"), ("lanhdao", "leader"), ("lanhdao2", "leader"), ("nghi", "leader"),
                       ("tinh", "province_admin")):
        service.create_user(name, PW, role=role, display_name=name.title())
    service.update_user("nghi", disabled=True)
    api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"})
    api.post("/api/v1/nodes", json={"node_id": "loa-01", "zone": "to-1"})
    with service.db.session() as s:
        tinh = s.query(User).filter_by(username="tinh").one()
    tenancy.create_ward(service, "xa-khac", "Xã khác", tinh)
    service.create_user("lanhdaokhac", PW, role="leader", ward="xa-khac")
    service.create_user("lanhdaotinh", PW, role="province_leader")
    return {n: As(client, n) for n in ("canbo", "lanhdao", "lanhdao2", "lanhdaokhac", "lanhdaotinh")}


def _rows(service, kind: str | None = None) -> dict[str, list[Notification]]:
    out: dict[str, list[Notification]] = {}
    with service.db.session() as s:
        names = {u.id: u.username for u in s.query(User)}
        for n in s.query(Notification).order_by(Notification.id):
            if kind is None or n.kind == kind:
                out.setdefault(names[n.user_id], []).append(n)
    return out


def _announcement(people, who: str = "canbo") -> int:
    r = people[who].post("/api/v1/announcements", json={"title": "Cắt nước", "text": TEXT})
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_submitted_tells_the_wards_approvers_by_the_policy_not_the_submitter(ward, service):
    ann = _announcement(ward)
    assert ward["canbo"].post(f"/api/v1/announcements/{ann}/submit").status_code == 200
    told = _rows(service, notifications.APPROVAL_REQUESTED)
    # the ward's leaders and admin and the province roles (the policy lets them approve in every ward); not the
    # officer who sent it, not the disabled leader, not another ward's leader
    expected = {"admin", "lanhdao", "lanhdao2", "tinh", "lanhdaotinh"}
    assert set(told) == expected
    assert all(len(v) == 1 and v[0].link == f"/announcements/{ann}" for v in told.values())
    with service.db.session() as s:
        for u in s.query(User).filter(User.username.in_(expected)):
            assert policy.allowed(u, policy.Action.ANNOUNCEMENT_APPROVE)
    # rendered in the reader's language at display time
    n = told["lanhdao"][0]
    assert notifications.text(n, "vi") == "Canbo đã gửi “Cắt nước” để duyệt."
    assert notifications.text(n, "en") == "Canbo sent “Cắt nước” for approval."

    # a leader submitting her own: the other approvers are told, not herself
    ann2 = _announcement(ward, "lanhdao")
    assert ward["lanhdao"].post(f"/api/v1/announcements/{ann2}/submit").status_code == 200
    told2 = [u for u, rows in _rows(service, notifications.APPROVAL_REQUESTED).items()
             if any(r.params["announcement_id"] == ann2 for r in rows)]
    assert "lanhdao" not in told2 and "lanhdao2" in told2


def test_approved_and_rejected_tell_the_author_and_close_the_request(ward, service):
    ann = _announcement(ward)
    ward["canbo"].post(f"/api/v1/announcements/{ann}/submit")
    r = ward["lanhdao"].post(f"/api/v1/announcements/{ann}/reject", json={"comment": "Ghi rõ giờ"})
    assert r.status_code == 200
    rows = _rows(service)
    assert [n.kind for n in rows["canbo"]] == [notifications.REJECTED]
    assert notifications.text(rows["canbo"][0], "vi") == "Lanhdao đã từ chối “Cắt nước”: Ghi rõ giờ"
    # the request is done for every approver: nobody else has to act
    assert all(n.read_at is not None for n in rows["lanhdao2"])
    ward["canbo"].post(f"/api/v1/announcements/{ann}/submit")
    assert ward["lanhdao2"].post(f"/api/v1/announcements/{ann}/approve").status_code == 200
    kinds = [n.kind for n in _rows(service)["canbo"]]
    assert kinds == [notifications.REJECTED, notifications.APPROVED]
    # the officer's own list through the API, newest first, and only hers
    mine = ward["canbo"].get("/api/v1/notifications").json
    assert [n["kind"] for n in mine] == ["announcement_approved", "announcement_rejected"]
    assert mine[0]["link"] == f"/announcements/{ann}" and mine[0]["read"] is False
    other = _rows(service)["lanhdao"][-1].id
    assert ward["canbo"].post(f"/api/v1/notifications/{other}/read").status_code == 404


def test_emergency_waiting_tells_every_other_confirmer_at_once_and_settles(ward, service):
    r = ward["lanhdao"].post("/api/v1/emergencies", json={"title": "Bão số 3", "text": "Bão sắp đổ bộ.",
                                                          "zones": ["to-1"]})
    assert r.status_code == 201, r.json
    alert = r.json["id"]
    told = _rows(service, notifications.EMERGENCY_CONFIRM)
    assert set(told) == {"lanhdao2", "admin", "tinh", "lanhdaotinh"}  # not lanhdao, not xa-khac, not disabled
    assert told["lanhdao2"][0].link == f"/emergency/{alert}" and told["lanhdao2"][0].read_at is None
    unread = ward["lanhdao2"].get("/api/v1/notifications?unread=true").json
    assert [n["params"]["alert_id"] for n in unread] == [alert]
    assert "Bão số 3" in unread[0]["text"] and "xác nhận" in unread[0]["text"]
    assert ward["lanhdao2"].get("/api/v1/notifications?unread=maybe").status_code == 400

    assert ward["lanhdao2"].post(f"/api/v1/emergencies/{alert}/release").status_code == 200
    done = _rows(service, notifications.EMERGENCY_CONFIRM)
    assert all(n.read_at is not None for rows in done.values() for n in rows)
    assert notifications.text(done["admin"][0], "vi").endswith("Đã được Lanhdao2 xác nhận.")

    # discarded: done as well
    r = ward["lanhdao"].post("/api/v1/emergencies", json={"title": "Diễn tập", "text": "Thử.", "zones": ["to-1"],
                                                          "drill": True})
    second = r.json["id"]
    assert ward["lanhdao"].post(f"/api/v1/emergencies/{second}/cancel").status_code == 200
    rows = [n for n in _rows(service, notifications.EMERGENCY_CONFIRM)["lanhdao2"]
            if n.params["alert_id"] == second]
    assert rows[0].read_at is not None and rows[0].params["outcome"] == "discarded"
    assert "diễn tập" in notifications.text(rows[0], "vi")


def test_a_cancel_request_tells_the_other_confirmers_and_settles_when_cancelled(ward, service):
    r = ward["lanhdao"].post("/api/v1/emergencies", json={"title": "Lũ quét", "text": "Lũ quét.", "zones": ["to-1"]})
    alert = r.json["id"]
    assert ward["lanhdao2"].post(f"/api/v1/emergencies/{alert}/release").status_code == 200
    # the first person asks to cancel: the alert keeps sounding, the others must know now
    asked = ward["lanhdao2"].post(f"/api/v1/emergencies/{alert}/cancel")
    assert asked.status_code == 202, asked.json
    told = _rows(service, notifications.EMERGENCY_CANCEL)
    assert set(told) == {"lanhdao", "admin", "tinh", "lanhdaotinh"}  # not the one who asked
    unread = ward["lanhdao"].get("/api/v1/notifications?unread=true").json
    assert [n["kind"] for n in unread] == ["emergency_cancel_confirm"]
    assert "Lũ quét" in unread[0]["text"] and "hủy" in unread[0]["text"]
    # asking twice tells nobody twice
    ward["lanhdao2"].post(f"/api/v1/emergencies/{alert}/cancel")
    assert len(_rows(service, notifications.EMERGENCY_CANCEL)["lanhdao"]) == 1
    # the second person confirms: done for everyone, with the outcome
    assert ward["lanhdao"].post(f"/api/v1/emergencies/{alert}/cancel").status_code == 200
    done = _rows(service, notifications.EMERGENCY_CANCEL)
    assert all(n.read_at is not None and n.params["outcome"] == "cancelled" for rows in done.values() for n in rows)
    assert notifications.text(done["admin"][0], "vi").endswith("xác nhận hủy.")


def test_read_and_read_all_api(ward, service):
    for _ in range(2):
        ann = _announcement(ward)
        ward["canbo"].post(f"/api/v1/announcements/{ann}/submit")
    first = ward["lanhdao"].get("/api/v1/notifications").json
    assert len(first) == 2
    r = ward["lanhdao"].post(f"/api/v1/notifications/{first[0]['id']}/read")
    assert r.status_code == 200 and r.json["read"] is True and r.json["read_at"]
    assert len(ward["lanhdao"].get("/api/v1/notifications?unread=true").json) == 1
    assert ward["lanhdao"].post("/api/v1/notifications/read-all").json == {"ok": True, "marked": 1}
    assert ward["lanhdao"].get("/api/v1/notifications?unread=true").json == []
    assert ward["lanhdao"].post("/api/v1/notifications/999999/read").status_code == 404


def _login(client, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": username, "password": PW, "csrf_token": token})
    assert r.status_code in (302, 303)


def test_pages_count_and_opening_marks_read(ward, service, app):
    ann = _announcement(ward)
    ward["canbo"].post(f"/api/v1/announcements/{ann}/submit")
    web = app.test_client()
    _login(web, "lanhdao")
    page = web.get("/notifications").get_data(as_text=True)
    assert "Canbo đã gửi “Cắt nước” để duyệt." in page and "Đánh dấu tất cả đã đọc" in page
    assert 'class="notify-badge">1</span>' in web.get("/").get_data(as_text=True)
    data = web.get("/notifications/count").json
    assert data["unread"] == 1 and data["emergencies"] == []
    n = _rows(service)["lanhdao"][0]
    r = web.get(f"/notifications/{n.id}/open")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/announcements/{ann}")
    assert web.get("/notifications/count").json["unread"] == 0
    # another person's notification is not hers to open
    other = _rows(service)["lanhdao2"][0]
    assert not web.get(f"/notifications/{other.id}/open").headers["Location"].endswith(f"/announcements/{ann}")


# ------------------------------------------------------------------------------------------ outside


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, _Hook.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp():
    class Handler:
        def __init__(self) -> None:
            self.messages: list[tuple[list[str], str]] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
            return "250 OK"

    handler = Handler()
    with socket.socket() as probe:  # a free port (the controller checks that it answers, so not port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, handler.messages
    controller.stop()


def _wait(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)


def test_webhook_and_email_reach_real_servers_without_blocking(ward, service, webhook, smtp):
    server, received = webhook
    controller, mails = smtp
    service.config.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/hook"
    service.config.NOTIFY_SMTP_HOST = "127.0.0.1"
    service.config.NOTIFY_SMTP_PORT = controller.port
    service.config.NOTIFY_SMTP_FROM = "loa@phuong.example"
    with service.db.session() as s:
        admin = s.query(User).filter_by(username="admin").one()
    notifications.set_email(service, admin, "lanhdao2", "hoa@phuong.example")
    r = ward["lanhdao"].post("/api/v1/emergencies", json={"title": "Bão số 3", "text": "Bão sắp đổ bộ.",
                                                          "zones": ["to-1"]})
    assert r.status_code == 201
    _wait(lambda: received and mails)
    assert len(received) == 1
    hook = received[0]
    assert hook["kind"] == "emergency_confirm" and hook["link"].endswith(f"/emergency/{r.json['id']}")
    assert "Bão số 3" in hook["text"] and "xác nhận" in hook["text"]
    assert {p["username"] for p in hook["recipients"]} == {"lanhdao2", "admin", "tinh", "lanhdaotinh"}
    assert len(mails) == 1 and mails[0][0] == ["hoa@phuong.example"]
    mail = email.message_from_string(mails[0][1], policy=email.policy.default)
    assert mail["Subject"] == "Loa Phường: Xác nhận phát"
    assert "Bão số 3" in mail.get_body().get_content() and f"/emergency/{r.json['id']}" in mail.get_content()

    # an unreachable webhook and mail server: logged, the action still succeeds and is quick
    service.config.NOTIFY_WEBHOOK_URL = "http://127.0.0.1:9/none"
    service.config.NOTIFY_SMTP_PORT = 9
    started = time.monotonic()
    ann = _announcement(ward)
    assert ward["canbo"].post(f"/api/v1/announcements/{ann}/submit").status_code == 200
    assert time.monotonic() - started < 5


def test_email_is_checked_and_only_managers_set_others(ward, service):
    with service.db.session() as s:
        users = {u.username: u for u in s.query(User)}
    assert notifications.set_email(service, users["canbo"], "canbo", "lan@phuong.example").email == \
        "lan@phuong.example"
    with pytest.raises(Exception) as exc:
        notifications.set_email(service, users["canbo"], "canbo", "not an address")
    assert exc.value.code == "invalid_email"
    with pytest.raises(Exception) as exc:
        notifications.set_email(service, users["canbo"], "lanhdao", "x@phuong.example")
    assert exc.value.code == "forbidden"
    with pytest.raises(Exception) as exc:
        notifications.set_email(service, users["admin"], "lanhdaokhac", "x@phuong.example")
    assert exc.value.code == "not_found"  # another ward's user is not hers
    assert notifications.set_email(service, users["canbo"], "canbo", "").email is None
