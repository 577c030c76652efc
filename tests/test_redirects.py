"""Every ``next=`` of the web panel stays on the panel (issue 13; found by the outside review after /login was
fixed): the province ward picker, the approval buttons and the fleet command form share ``logins.safe_next``."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from conftest import ADMIN
from people import As
from test_panel import csrf, login

OFF_SITE = ["/\t/evil.example/", "//evil.example", "/\\evil.example", "https://evil.example/", "/\n/evil.example",
            "/\r\n/evil.example", " //evil.example", "http:evil.example"]


def _stays_home(response) -> None:
    assert response.status_code in (302, 303), response.status_code
    location = response.headers["Location"]
    assert re.match(r"^(/(?![/\\])|http://localhost/)", location), location
    assert "evil" not in location and "\n" not in location and "\r" not in location


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_ward_picker_never_redirects_off_site(client, target):
    login(client, *ADMIN)
    _stays_home(client.get(f"/scope?ward=&next={quote(target)}"))


@pytest.mark.parametrize("target", OFF_SITE)
def test_approval_buttons_never_redirect_off_site(client, target):
    api = As(client, *ADMIN)
    ann = api.post("/api/v1/announcements", json={"title": "Tin", "text": "Sáng mai tiêm chủng."}).json
    login(client, *ADMIN)
    token = csrf(client, f"/announcements/{ann['id']}")
    r = client.post(f"/announcements/{ann['id']}/approve", data={"csrf_token": token, "next": target})
    _stays_home(r)


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_fleet_command_form_never_redirects_off_site(client, target):
    api = As(client, *ADMIN)
    assert api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"}).status_code == 201
    assert api.post("/api/v1/nodes", json={"node_id": "loa-1", "zone": "to-1"}).status_code == 201
    login(client, *ADMIN)
    token = csrf(client, "/fleet")
    r = client.post("/fleet/commands", data={"csrf_token": token, "name": "ping", "target": "node",
                                             "node_id": "loa-1", "next": target})
    _stays_home(r)


def test_a_same_site_next_is_kept(client):
    login(client, *ADMIN)
    r = client.get("/scope?ward=&next=/timeline%3Fzone%3Dto-1")
    assert r.headers["Location"].endswith("/timeline?zone=to-1")
