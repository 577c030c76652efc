"""Approval of content (draft → submitted → approved / rejected → published), roles and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from test_panel import csrf, login

TEXT = "Ủy ban nhân dân phường thông báo: chiều nay cắt điện từ 14 giờ đến 16 giờ để sửa đường dây."


@pytest.fixture
def people(client, service, api):
    """Tokens of an officer, a leader and the admin; zones to-3 (two nodes) and to-5 (one node)."""
    service.create_user("canbo", "officer-password", role="officer")
    service.create_user("chutich", "leader-password", role="leader")
    tokens = {"admin": api.headers}
    for name, pw in (("canbo", "officer-password"), ("chutich", "leader-password")):
        tok = client.post("/api/v1/auth/token", json={"username": name, "password": pw}).json["token"]
        tokens[name] = {"Authorization": f"Bearer {tok}"}
    api.post("/api/v1/zones", json={"code": "to-3", "name": "Tổ 3"})
    api.post("/api/v1/zones", json={"code": "to-5", "name": "Tổ 5"})
    for node_id, zone in (("loa-01", "to-3"), ("loa-02", "to-3"), ("loa-03", "to-5")):
        api.post("/api/v1/nodes", json={"node_id": node_id, "zone": zone})

    def call(who: str, method: str, url: str, **kw):
        return client.open(url, method=method, headers=tokens[who], **kw)

    return call


def items(service, node_id: str) -> list[dict]:
    return service.get_node(node_id).plan_payload["items"]


def test_only_approved_content_is_published_and_edits_send_it_back(people, service):
    call = people
    r = call("canbo", "POST", "/api/v1/announcements", json={"title": "Cắt điện", "text": TEXT, "approve": True})
    assert r.status_code == 403  # an officer cannot approve
    ann = call("canbo", "POST", "/api/v1/announcements", json={"title": "Cắt điện", "text": TEXT}).json
    assert ann["approval"] == "draft"
    start = (datetime.now(UTC) + timedelta(hours=3)).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    r = call("canbo", "POST", "/api/v1/schedules", json={"announcement_id": ann["id"], "zones": ["to-3"],
                                                          "start_at": start.strftime("%Y-%m-%dT%H:%M:%S")})
    assert r.status_code == 201  # an officer may schedule a draft: it waits for approval
    assert items(service, "loa-01") == []
    assert call("canbo", "GET", f"/api/v1/timeline?zone=to-3&date={start.date()}").json["entries"] == []

    assert call("canbo", "POST", f"/api/v1/announcements/{ann['id']}/approve").status_code == 403
    # scheduling the draft sent it to the leaders (R6); sending it again is no transition
    assert call("canbo", "GET", f"/api/v1/announcements/{ann['id']}").json["approval"] == "submitted"
    assert call("canbo", "POST", f"/api/v1/announcements/{ann['id']}/submit").status_code == 409
    assert [a["id"] for a in call("chutich", "GET", "/api/v1/approvals").json] == [ann["id"]]
    r = call("chutich", "POST", f"/api/v1/announcements/{ann['id']}/reject", json={"comment": ""})
    assert r.status_code == 400 and r.json["error"]["code"] == "comment_required"
    r = call("chutich", "POST", f"/api/v1/announcements/{ann['id']}/reject", json={"comment": "Ghi rõ tên đường"})
    assert r.json["approval"] == "rejected" and r.json["approval_comment"] == "Ghi rõ tên đường"
    assert items(service, "loa-01") == []
    r = call("canbo", "POST", f"/api/v1/announcements/{ann['id']}/reject", json={"comment": "x"})
    assert r.status_code == 403
    r = call("canbo", "PUT", f"/api/v1/announcements/{ann['id']}",
             json={"title": "Cắt điện", "text": TEXT + " Đường Lê Lợi."})
    assert r.json["approval"] == "rejected"  # a rejected text stays rejected until resubmitted
    call("canbo", "POST", f"/api/v1/announcements/{ann['id']}/submit")
    r = call("chutich", "POST", f"/api/v1/announcements/{ann['id']}/approve")
    assert r.status_code == 200, r.json
    # approved → the plans of to-3 (only) carry it, and it is "published"
    assert [i["title"] for i in items(service, "loa-01")] == ["Cắt điện"]
    assert items(service, "loa-03") == []
    assert call("canbo", "GET", f"/api/v1/announcements/{ann['id']}").json["approval"] == "published"
    r = call("chutich", "POST", f"/api/v1/announcements/{ann['id']}/approve")
    assert r.status_code == 409 and r.json["error"]["code"] == "invalid_transition"

    # editing approved content sends it back and takes it off the air at once, on the affected nodes only
    v3 = service.get_node("loa-03").plan_version
    old_sha = items(service, "loa-01")[0]["media"]["sha256"]
    r = call("canbo", "PUT", f"/api/v1/announcements/{ann['id']}",
             json={"title": "Cắt điện", "text": TEXT + " Đường Trần Phú."})
    assert r.json["approval"] == "submitted" and r.json["media"]["sha256"] != old_sha
    assert items(service, "loa-01") == [] and service.get_node("loa-03").plan_version == v3
    call("chutich", "POST", f"/api/v1/announcements/{ann['id']}/approve")
    assert [i["media"]["sha256"] for i in items(service, "loa-02")] == [r.json["media"]["sha256"]]

    # the audit log says who did what, when
    log = call("chutich", "GET", f"/api/v1/audit?target={ann['id']}").json
    actions = [(e["user"], e["action"]) for e in reversed(log) if e["action"].startswith("announcement.")]
    assert actions == [
        ("canbo", "announcement.create"), ("canbo", "announcement.submit"), ("chutich", "announcement.reject"),
        ("canbo", "announcement.edit"), ("canbo", "announcement.submit"), ("chutich", "announcement.approve"),
        ("canbo", "announcement.approval_voided"), ("canbo", "announcement.edit"),
        ("chutich", "announcement.approve")]
    assert all(e["at"].endswith("Z") for e in log)
    rejected = next(e for e in log if e["action"] == "announcement.reject")
    assert rejected["detail"]["comment"] == "Ghi rõ tên đường"


def test_a_programme_plays_only_when_all_its_announcements_are_approved(people, service):
    call = people
    a = call("chutich", "POST", "/api/v1/announcements", json={"title": "A", "text": TEXT, "approve": True}).json
    b = call("canbo", "POST", "/api/v1/announcements", json={"title": "B", "text": TEXT}).json
    start = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = call("canbo", "POST", "/api/v1/schedules", json={
        "zones": ["to-5"], "start_at": start,
        "items": [{"kind": "announcement", "announcement_id": a["id"]},
                  {"kind": "announcement", "announcement_id": b["id"]}]})
    assert r.status_code == 201, r.json
    assert items(service, "loa-03") == []
    call("canbo", "POST", f"/api/v1/announcements/{b['id']}/submit")
    call("admin", "POST", f"/api/v1/announcements/{b['id']}/approve")
    assert [i["title"] for i in items(service, "loa-03")] == ["A", "B"]


def test_approval_pages(client, people, service):
    ann = people("canbo", "POST", "/api/v1/announcements", json={"title": "Họp tổ", "text": TEXT}).json
    people("canbo", "POST", f"/api/v1/announcements/{ann['id']}/submit")
    login(client, "chutich", "leader-password")
    page = client.get("/approvals").text
    assert "Chờ duyệt" in page and "Họp tổ" in page and "Trả lại" in page  # reject = "send back"
    token = csrf(client, "/approvals")
    r = client.post(f"/announcements/{ann['id']}/reject", data={"csrf_token": token, "comment": "Sai giờ",
                                                                "next": "/approvals"})
    assert r.status_code == 302
    detail = client.get(f"/announcements/{ann['id']}").text
    assert "Bị trả lại" in detail and "Sai giờ" in detail
    audit = client.get("/audit").text
    assert "Nhật ký thao tác" in audit and "announcement.reject" in audit and "chutich" in audit
    assert client.get("/schedules/new").status_code == 200
    assert client.get(f"/announcements/{ann['id']}/edit").status_code == 200
