"""Every page of the panel, as each role sees it, at phone and desktop size in Chromium: no sideways scroll, no
axe-core serious or critical violation, no English, ISO date or raw code in the Vietnamese text, no script error."""

from __future__ import annotations

import pytest
from browser import login, page_problems

# Four sweeps of every page: `make test-all` (CI). The fast lane keeps tests/test_hardening.py's sweep of every page
# in Chromium (no CSP violation) and each feature's own page tests (tests/test_ui_*.py).
pytestmark = pytest.mark.slow

PAGES = ["/", "/announcements", "/announcements/new", "/announcements/upload", "/announcements/{ann}",
         "/announcements/{ann}/edit", "/approvals", "/schedules", "/schedules/new", "/timeline?zone=to-1", "/nodes",
         "/nodes/loa-01", "/fleet", "/fleet/map", "/fleet/import", "/fleet/nodes/loa-01", "/plays", "/reports",
         "/audit", "/abbreviations", "/audio-settings", "/stream-sources", "/users", "/account/password",
         "/emergency", "/emergency/{alert}", "/calendar", "/calendar?view=month", "/today", "/notifications",
         "/no-such-page"]


@pytest.fixture
def seeded(live):
    ann = live.api("canbo", "POST", "/announcements", 201,
                   json={"title": "Tiêm phòng", "text": "Sáng thứ Bảy tiêm phòng tại trạm y tế phường."})
    # an approved one too: the emergency page then offers its select (which must have a label)
    live.api("admin", "POST", "/announcements", 201,
             json={"title": "Phòng chống bão", "text": "Bà con chằng chống nhà cửa.", "approve": True})
    alert = live.api("lanhdao", "POST", "/emergencies", (201, 202),
                     json={"title": "Bão số 3", "text": "Bão sắp đổ bộ.", "zones": ["to-1"]})
    return {"ann": ann["id"], "alert": alert["id"]}


@pytest.mark.parametrize("user", ["canbo", "lanhdao", "admin"])
def test_every_page_is_clean_on_a_phone(live, seeded, phone, user):
    login(phone, live, user)
    problems: list[str] = []
    for path in PAGES:
        phone.goto(live.url(path.format(**seeded)))
        problems += page_problems(phone)
    # a page's own 403/404 and the map's unreachable tiles (no internet here) are reported as failed loads
    problems += [e for e in phone.script_errors if "Failed to load resource" not in e]
    assert problems == [], "\n".join(problems)


def test_every_page_is_clean_on_a_desktop_and_in_english(live, seeded, desktop):
    login(desktop, live, "admin")
    problems: list[str] = []
    for path in PAGES:
        desktop.goto(live.url(path.format(**seeded)))
        problems += page_problems(desktop)
    desktop.goto(live.url("/?lang=en"))
    for path in PAGES:
        desktop.goto(live.url(path.format(**seeded)))
        problems += page_problems(desktop, lang="en")
    assert problems == [], "\n".join(problems)
