"""The OpenAPI document is usable as a contract: a typed Python client is generated from it
(openapi-python-client) and drives the live panel — typed bodies in, typed models out, errors as the one
``Error`` model, undocumented statuses raising."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from broadcaster.app import create_app, runtime
from broadcaster.broker import free_port
from broadcaster.config import TestConfig as PanelConfig

PASSWORD = "password-123"

GENERATOR_CONFIG = """\
project_name_override: loaphuong-api-client
package_name_override: loaphuong_api_client
post_hooks: []
content_type_overrides:
  audio/mpeg: application/octet-stream
  audio/webm: application/octet-stream
  text/csv: application/octet-stream
  application/cap+xml: application/octet-stream
  application/xml: application/octet-stream
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    port = free_port()
    app = create_app(PanelConfig(root / "panel", PORT=port, HOST="127.0.0.1"))
    service = runtime(app).service
    service.create_user("admin", PASSWORD, role="admin")
    service.create_user("officer", PASSWORD, role="officer")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", app, root
    server.shutdown()
    server.server_close()
    runtime(app).db.dispose()


@pytest.fixture(scope="module")
def client_pkg(live):
    """The client package generated from the panel's own /api/v1/openapi.json."""
    base, app, root = live
    spec = app.test_client().get("/api/v1/openapi.json").json
    (root / "openapi.json").write_text(json.dumps(spec))
    (root / "gen.yaml").write_text(GENERATOR_CONFIG)
    out = root / "generated"
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run([str(generator), "generate", "--path", str(root / "openapi.json"), "--output-path",
                           str(out), "--meta", "none", "--config", str(root / "gen.yaml")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    (root / "pkg").mkdir(exist_ok=True)
    target = root / "pkg" / "loaphuong_api_client"
    if not target.exists():
        out.rename(target)
    sys.path.insert(0, str(root / "pkg"))
    try:
        yield importlib.import_module("loaphuong_api_client")
    finally:
        sys.path.remove(str(root / "pkg"))


def _mod(name: str):
    return importlib.import_module(f"loaphuong_api_client.{name}")


def test_a_generated_client_logs_in_creates_and_lists_with_typed_models(live, client_pkg):
    base, _app, _root = live
    models = _mod("models")
    api = "api.default."
    anonymous = client_pkg.Client(base_url=f"{base}/api/v1", raise_on_unexpected_status=True)
    token = _mod(api + "post_auth_token").sync(client=anonymous,
                                               body=models.LoginIn(username="admin", password=PASSWORD))
    assert isinstance(token, models.Token) and token.role == "admin"

    admin = client_pkg.AuthenticatedClient(base_url=f"{base}/api/v1", token=token.token,
                                           raise_on_unexpected_status=True)
    zone = _mod(api + "post_zones").sync(client=admin, body=models.ZoneIn(code="to-5", name="Tổ dân phố 5"))
    assert isinstance(zone, models.Zone) and zone.code == "to-5"
    zones = _mod(api + "get_zones").sync(client=admin)
    assert [z.code for z in zones] == ["to-5"] and all(isinstance(z, models.Zone) for z in zones)

    ann = _mod(api + "post_announcements").sync(
        client=admin, body=models.AnnouncementIn(title="Lịch tiêm chủng", text="Sáng mai tiêm chủng ở nhà văn hoá."))
    assert isinstance(ann, models.Announcement) and isinstance(ann.audio, models.AnnouncementAudio)
    fetched = _mod(api + "get_announcements_announcement_id").sync(client=admin, announcement_id=ann.id)
    assert fetched.title == "Lịch tiêm chủng"


def test_errors_come_back_as_the_one_error_model(live, client_pkg):
    base, _app, _root = live
    models = _mod("models")
    api = "api.default."
    anonymous = client_pkg.Client(base_url=f"{base}/api/v1", raise_on_unexpected_status=True,
                                  headers={"Accept-Language": "en"})
    bad = _mod(api + "post_auth_token").sync_detailed(client=anonymous,
                                                      body=models.LoginIn(username="admin", password="nope"))
    assert bad.status_code == 401 and isinstance(bad.parsed, models.Error)
    assert bad.parsed.error.code == "invalid_credentials" and bad.parsed.error.message

    token = _mod(api + "post_auth_token").sync(client=anonymous,
                                               body=models.LoginIn(username="officer", password=PASSWORD))
    officer = client_pkg.AuthenticatedClient(base_url=f"{base}/api/v1", token=token.token,
                                             raise_on_unexpected_status=True)
    refused = _mod(api + "post_zones").sync_detailed(client=officer, body=models.ZoneIn(code="to-9", name="Tổ 9"))
    assert refused.status_code == 403 and isinstance(refused.parsed, models.Error)
    missing = _mod(api + "get_announcements_announcement_id").sync_detailed(client=officer, announcement_id=999)
    assert missing.status_code == 404 and missing.parsed.error.code == "not_found"
    assert missing.parsed.error.message == "Không tìm thấy."  # Vietnamese unless the client asks otherwise
