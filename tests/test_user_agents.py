"""The "My sessions" list of /account/password says which browser and phone a login came from in Vietnamese
("Safari trên iPhone"), not the raw User-Agent (kept in a ``title`` for whoever wants it)."""

from __future__ import annotations

import html
import re

import flask
import pytest
from test_panel import login

from broadcaster.web.views_users import describe_user_agent

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
LINUX_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                "Safari/537.36")

CASES = [
    (LINUX_CHROME, "Chrome trên Linux"),
    (IPHONE, "Safari trên iPhone"),
    ("Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile "
     "Safari/537.36", "Chrome trên Android"),
    ("Mozilla/5.0 (Linux; Android 13; SM-A325F) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 "
     "Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet trên Android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", "Edge trên Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) coc_coc_browser/124.0.260 "
     "Chrome/118.0.0.0 Safari/537.36", "Cốc Cốc trên Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox trên macOS"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Safari/605.1.15", "Safari trên macOS"),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 "
     "Mobile/15E148 Safari/604.1", "Chrome trên iPad"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
     "Safari/537.36", "Chrome trên Linux"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148", "Trình duyệt khác trên iPhone"),  # an app's own web view
    ("Mozilla/5.0 (compatible; SomeBot/1.0)", "Trình duyệt khác"),
    ("python-requests/2.32.3", "Chương trình Python"),
    ("curl/8.5.0", "Chương trình curl"),
    ("Werkzeug/3.1.3", "Chương trình khác"),
    ("", "Thiết bị không rõ"),
    (None, "Thiết bị không rõ"),
]


@pytest.mark.parametrize("user_agent, said", CASES)
def test_user_agent_in_vietnamese(app, user_agent, said):
    with app.test_request_context():
        flask.g.locale = "vi"
        assert describe_user_agent(user_agent) == said


def test_user_agent_in_english(app):
    with app.test_request_context():
        flask.g.locale = "en"
        assert describe_user_agent(IPHONE) == "Safari on iPhone"
        assert describe_user_agent("Mozilla/5.0 (compatible)") == "Other browser"


def test_my_sessions_name_the_browser_not_the_user_agent(app):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = IPHONE
    assert login(client).status_code == 302
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-password-1"},
                        headers={"User-Agent": "python-requests/2.32.3"})
    assert token.status_code == 201
    page = client.get("/account/password")
    assert page.status_code == 200
    body = page.text
    assert "Safari trên iPhone" in body and "Chương trình Python" in body
    # the raw string only in a title attribute, never as the text of the page
    assert f'title="{html.escape(IPHONE)}"' in body
    visible = re.sub(r'title="[^"]*"', "", body)
    assert "Mozilla" not in visible and "AppleWebKit" not in visible and "python-requests" not in visible
