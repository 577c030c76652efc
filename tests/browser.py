"""Browser tests: a live panel served over HTTP and Debian's Chromium driven by Playwright, at phone and desktop
sizes, with axe-core (tests/vendor/axe.min.js, MPL-2.0) injected into every page.

Use the fixtures of tests/conftest.py: ``live`` (a :class:`LivePanel` with users, zones and nodes), ``phone``
and ``desktop`` (a fresh page of that size; a screenshot goes to ``test-artifacts/`` when the test fails).
``page_problems(page)`` lists what a person would see wrong on the page in front of her.
"""

from __future__ import annotations

import math
import re
import struct
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broadcaster.app import create_app, runtime
from broadcaster.config import TestConfig
from broadcaster.web.security import make_panel_server

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "password-123"
#: username → (role, display name)
PEOPLE = {
    "admin": ("admin", "Quản trị"),
    "canbo": ("officer", "Nguyễn Thị Lan"),
    "lanhdao": ("leader", "Trần Văn Minh"),
    "lanhdao2": ("leader", "Lê Thị Hoa"),
}
ZONES = {"to-1": "Tổ dân phố 1", "to-2": "Tổ dân phố 2", "to-3": "Tổ dân phố 3"}
NODES = ("node_id,name,zone,lat,lon\n"
         "loa-01,Loa chợ,to-1,10.7769,106.7009\n"
         "loa-02,Loa trường học,to-2,10.7781,106.7021\n"
         "loa-03,Loa nhà văn hoá,to-3,10.7758,106.6990\n")

#: English words that must not appear in the Vietnamese panel's visible text (whole words, case-sensitive where
#: a Vietnamese word could collide).
ENGLISH = re.compile(r"\b(the|and|of|Save|Delete|Cancel|Status|Active|Pending|Error|Schedule|Reason|Created|None|True|"
                     r"False|draft|approved|pending|active|released|online|offline|submitted|rejected|ready|failed|"
                     r"Forbidden|Not Found|Internal Server Error|LUFS|SHA-?256|sha256)\b")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
#: A raw code: snake_case or dotted identifiers shown to a person (``playback_started``, ``schedule.create``).
RAW_CODE = re.compile(r"\b[a-z]{2,}(?:[_.][a-z]{2,})+\b")


@dataclass
class LivePanel:
    """A panel with users, zones and nodes, served by the server ``loaphuong serve`` uses."""

    app: Any
    base: str
    server: Any
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def service(self):
        return runtime(self.app).service

    def api(self, user: str, method: str, path: str, status: int | tuple[int, ...] | None = None, **kw) -> Any:
        """An API call as ``user`` (``path`` under /api/v1); checks the status when given, returns the JSON."""
        if user not in self.tokens:
            r = self.app.test_client().post("/api/v1/auth/token", json={"username": user, "password": PASSWORD})
            assert r.status_code == 201, r.json
            self.tokens[user] = r.json["token"]
        r = self.app.test_client().open("/api/v1" + path, method=method,
                                        headers={"Authorization": f"Bearer {self.tokens[user]}"}, **kw)
        if status is not None:
            assert r.status_code in ((status,) if isinstance(status, int) else status), (r.status_code, r.json)
        return r.json if r.is_json else r.data

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        runtime(self.app).db.dispose()


def start_panel(data_dir: Path, **config: Any) -> LivePanel:
    app = create_app(TestConfig(data_dir, **config))
    panel = LivePanel(app=app, base="", server=None)
    for username, (role, name) in PEOPLE.items():
        panel.service.create_user(username, PASSWORD, role=role, display_name=name)
    for code, name in ZONES.items():
        panel.api("admin", "POST", "/zones", 201, json={"code": code, "name": name})
    panel.api("admin", "POST", "/fleet/registry.csv", 201, data=NODES, content_type="text/csv")
    server = make_panel_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    panel.server, panel.base = server, f"http://127.0.0.1:{server.server_address[1]}"
    return panel


def login(page, panel: LivePanel, username: str) -> None:
    """Log in through the login page as a person does (labels, Enter)."""
    page.goto(panel.url("/login"))
    page.get_by_label(re.compile("Tên đăng nhập|Username")).fill(username)
    page.get_by_label(re.compile("Mật khẩu|Password")).fill(PASSWORD)
    page.get_by_label(re.compile("Mật khẩu|Password")).press("Enter")
    page.wait_for_url(re.compile(r".*/(?!login).*"))
    page.wait_for_load_state()


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of these impacts on the page as it is now: ``rule: selector…``."""
    found = page.evaluate("""async (impacts) => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => impacts.includes(v.impact))
            .map(v => v.id + ': ' + v.nodes.slice(0, 5).map(n => n.target.join(' ')).join(', '));
    }""", list(impacts))
    return list(found)


def page_problems(page, *, lang: str = "vi", axe: bool = True) -> list[str]:
    """What is wrong with the page in front of the user: horizontal scroll, axe serious/critical violations, raw
    codes in the visible text, and in Vietnamese also English words and ISO dates."""
    problems: list[str] = []
    where = page.url
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => {
            const r = e.getBoundingClientRect(); return r.right > document.documentElement.clientWidth + 1
                && getComputedStyle(e).position !== 'fixed'; }).slice(0, 5)
            .map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : ''))""")
        problems.append(f"{where}: scrolls sideways by {overflow}px ({', '.join(wide)})")
    if axe:
        problems.extend(f"{where}: axe {v}" for v in axe_violations(page))
    text = page.inner_text("body")
    checks = ((ENGLISH, "English"), (ISO_DATE, "ISO date"), (RAW_CODE, "raw code")) if lang == "vi" else \
        ((RAW_CODE, "raw code"),)  # English is the source language: complete words, never a catalogue key
    for pattern, what in checks:
        hits = sorted(set(pattern.findall(text)))
        if hits:
            problems.append(f"{where}: {what} in the text: {hits[:8]}")
    return problems


def fake_voice_wav(path: Path, seconds: float = 4.0, rate: int = 48_000) -> Path:
    """A WAV for Chromium's fake microphone (``--use-file-for-fake-audio-capture``): a voice-like tone with
    syllable-rate loudness changes, so what the live page records is audio, not silence."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        t = n / rate
        envelope = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t)  # ~4 syllables a second
        sample = envelope * (0.5 * math.sin(2 * math.pi * 220 * t) + 0.25 * math.sin(2 * math.pi * 660 * t))
        frames += struct.pack("<h", int(sample * 12_000))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


def chromium_args(fake_audio: Path) -> list[str]:
    """Headless Chromium as the tests run it: a fake microphone playing ``fake_audio`` (live paging), the
    permission prompt answered yes."""
    return ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_audio}"]


def new_page(browser, size: dict[str, int]):
    context = browser.new_context(viewport=size, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    context.add_init_script(path=str(AXE))  # init scripts are not subject to the page's CSP
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.script_errors = errors  # type: ignore[attr-defined]
    return page


def keep_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", name)[:150] + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
