"""Fleet pages: list with filters, map (Leaflet from our own static files), node detail with remote control,
CSV import/export, proof-of-play reports. Logic lives in broadcaster/fleet.py."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup

from broadcaster import fleet, logins
from broadcaster.csvsafe import credentials_csv
from broadcaster.i18n import gettext as _
from broadcaster.models import Node
from broadcaster.services import ServiceError
from broadcaster.web.common import admin_required, error_text, svc
from devices import protocol as proto

bp = Blueprint("fleet", __name__)

PAGE_SIZE = 200


def _filter() -> fleet.FleetFilter:
    drifting = request.args.get("drifting")
    return fleet.FleetFilter(ward=request.args.get("ward") or None, zone=request.args.get("zone") or None,
                             presence=request.args.get("presence") or None,
                             drifting=True if drifting == "1" else False if drifting == "0" else None,
                             q=request.args.get("q") or None)


def _choices() -> dict[str, Any]:
    service = svc()
    return {"zones": service.list_zones(g.scope), "wards": fleet.wards(service)}


@bp.app_template_filter("bytes_h")
def bytes_filter(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@bp.app_template_filter("coded")
def coded_filter(value: str | None, prefix: str) -> str:
    """A protocol code in words (``playback_started|coded("event.")`` → "bắt đầu phát"); a value the catalogue
    does not know (a node's own free text) is shown as it came."""
    if not value:
        return ""
    key = prefix + value
    text = _(key)
    return value if text == key else text


@bp.app_template_filter("ts_local")
def ts_local_filter(value: str | None, fmt: str = "%H:%M:%S %d/%m/%Y") -> str:
    """A protocol timestamp string (a plan item's ``start``) in the panel's local time."""
    if not value:
        return "—"
    try:
        moment = proto.parse_ts(value)
    except (ValueError, TypeError):
        return value
    return svc().local(moment).strftime(fmt)


@bp.get("/fleet")
@login_required
def fleet_page():
    service = svc()
    flt = _filter()
    nodes = fleet.list_nodes(service, flt, scope=g.scope)
    everything = fleet.list_nodes(service, refresh_first=False, scope=g.scope) if any(vars(flt).values()) else nodes
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    pages = max((len(nodes) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    shown = nodes[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    alerts = [n for n in everything if n.offline_alert_at is not None]
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("fleet.html", nodes=shown, total=len(nodes), page=page, pages=pages, args=args,
                           summary=fleet.summary(everything, service.config), alerts=alerts[:20],
                           alert_count=len(alerts), flt=flt,
                           drift_limit=service.config.DRIFT_LIMIT_MS,
                           config=service.config, is_drifting=fleet.is_drifting, ward_of=fleet.node_ward,
                           announcements=fleet.playable_announcements(service), **_choices())


@bp.get("/fleet/map")
@login_required
def fleet_map_page():
    service = svc()
    nodes = fleet.list_nodes(service, _filter(), scope=g.scope)
    markers = [fleet.marker_json(n, service.config) for n in nodes if n.lat is not None and n.lon is not None]
    choices = _choices()
    return render_template("fleet_map.html", markers=markers, without_gps=len(nodes) - len(markers),
                           tiles=(service.config.MAP_TILES_URL or "").strip(), flt=_filter(),
                           zone_names={z.code: z.name for z in choices["zones"]}, **choices)


@bp.get("/fleet/nodes/<node_id>")
@login_required
def fleet_node_page(node_id: str):
    service = svc()
    fleet.refresh(service)
    node = service.get_node(node_id, g.scope)
    if node is None:
        abort(404)
    return render_template("fleet_node.html", node=node, config=service.config,
                           drifting=fleet.is_drifting(node, service.config), ward=fleet.node_ward(node),
                           events=fleet.last_events(service, node_id, 30),
                           commands=fleet.commands(service, node_id=node_id, limit=50, scope=g.scope),
                           announcements=fleet.playable_announcements(service), zones=service.list_zones(g.scope))


@bp.post("/fleet/nodes/<node_id>/edit")
@admin_required
def fleet_node_edit(node_id: str):
    data = {k: request.form.get(k, "") for k in fleet.EDITABLE}
    try:
        fleet.update_node(svc(), node_id, data, current_user)
        flash(_("Saved."), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(url_for("fleet.fleet_node_page", node_id=node_id))


@bp.post("/fleet/commands")
@login_required
def fleet_command():
    form = request.form
    name = form.get("name", "")
    # Only the fields of the chosen command (the form shows them all), validated by fleet.send like the API's.
    args = {k: form.get(k) for k in fleet.command_fields(name) if form.get(k)}
    target = form.get("target", "node")
    back = logins.safe_next(form.get("next")) or url_for("fleet.fleet_page")  # never off-site (logins.py)
    try:
        records = fleet.send(svc(), name, args, node_ids=[form.get("node_id", "")] if target == "node" else None,
                             zone=form.get("zone") if target == "zone" else None,
                             ward=form.get("ward") if target == "ward" else None, user=current_user)
        flash(_("Command sent to {count} loudspeaker(s); waiting for acknowledgement.", count=len(records)), "ok")
    except ServiceError as exc:
        flash(error_text(exc), "error")
    return redirect(back)


@bp.route("/fleet/import", methods=["GET", "POST"])
@admin_required
def fleet_import():
    if request.method == "GET":
        return render_template("fleet_import.html", columns=fleet.CSV_COLUMNS)
    upload = request.files.get("file")
    data = upload.read() if upload is not None and upload.filename else request.form.get("csv", "").encode()
    try:
        result = fleet.import_csv(svc(), data, current_user, dry_run=bool(request.form.get("dry_run")))
    except fleet.ImportRefused as exc:
        return render_template("fleet_import.html", columns=fleet.CSV_COLUMNS, errors=exc.errors), 400
    creds = credentials_csv(result.credentials)
    return render_template("fleet_import.html", columns=fleet.CSV_COLUMNS, result=result, credentials_csv=creds)


@bp.get("/fleet/export.csv")
@login_required
def fleet_export():
    return Response(fleet.export_csv(svc(), g.scope), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="loaphuong-nodes.csv"'})


def _period() -> tuple[Any, Any]:
    service = svc()
    today = service.local(datetime.now(UTC)).date()
    last = fleet.parse_day(request.args.get("to"), "to", today)
    first = fleet.parse_day(request.args.get("from"), "from", last - timedelta(days=6))
    return first, last


@bp.app_template_filter("dmy")
def dmy_filter(value: str | date | None) -> str:
    """A calendar day as people write it here: 07/12/2026 (reports carry ISO days: 2026-12-07)."""
    if not value:
        return "—"
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


#: The charts' drawing box (SVG user units; the picture scales to the width of the screen).
CHART_W, CHART_H, CHART_LEFT, CHART_TOP, CHART_BOTTOM = 640.0, 240.0, 40.0, 14.0, 34.0


def chart(zone: dict[str, Any]) -> dict[str, Any]:
    """Bars of one zone's month (fleet.daily_by_zone): per day a pale bar for the plays that were due and a dark
    one in front for those played, on a common scale; day numbers under the 1st and every 5th day."""
    days = zone["days"]
    plot_w, plot_h = CHART_W - CHART_LEFT - 6, CHART_H - CHART_TOP - CHART_BOTTOM
    step = plot_w / max(len(days), 1)
    width = max(step * 0.72, 1.0)
    top = max([d["planned"] for d in days] + [1])
    bars = []
    for i, d in enumerate(days):
        x = CHART_LEFT + i * step + (step - width) / 2
        planned_h, played_h = plot_h * d["planned"] / top, plot_h * min(d["played"], d["planned"]) / top
        bars.append({"x": round(x, 1), "w": round(width, 1), "cx": round(x + width / 2, 1),
                     "planned_y": round(CHART_TOP + plot_h - planned_h, 1), "planned_h": round(planned_h, 1),
                     "played_y": round(CHART_TOP + plot_h - played_h, 1), "played_h": round(played_h, 1),
                     "label": d["day"].day if d["day"].day == 1 or d["day"].day % 5 == 0 else None})
    return {**zone, "bars": bars, "top": top, "w": CHART_W, "h": CHART_H, "left": CHART_LEFT,
            "base": CHART_TOP + plot_h, "y_top": CHART_TOP}


@bp.get("/reports")
@login_required
def reports_page():
    service = svc()
    status = 200
    report: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    charts: list[dict[str, Any]] = []
    month: dict[str, Any] | None = None
    try:
        first, last = _period()
        report = fleet.compliance(service, first, last, zone=request.args.get("zone") or None, scope=g.scope,
                                  schedule_id=request.args.get("schedule_id", type=int))
        stats = fleet.monthly(service, request.args.get("month") or None, g.scope)
        m_first, m_last = fleet.parse_month(stats["month"])
        month = fleet.compliance(service, m_first, m_last, zone=request.args.get("zone") or None, scope=g.scope)
        charts = [chart(z) for z in fleet.daily_by_zone(month)]
    except ServiceError as exc:
        flash(error_text(exc), "error")
        status = exc.status
    return render_template("reports.html", report=report, stats=stats, month=month, charts=charts,
                           months=_months(service, stats["month"] if stats else None),
                           args=request.args, zones=service.list_zones(g.scope)), status


def _months(service: Any, shown: str | None) -> list[str]:
    """The month picker's choices (YYYY-MM, newest first): the last 24 months and the one shown. A list of
    "12/2026" rather than the browser's month input, which speaks the browser's language, not the page's."""
    today = service.local(datetime.now(UTC)).date()
    year, month = today.year, today.month
    out = []
    for _i in range(24):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    if shown and shown not in out:
        out.append(shown)
        out.sort(reverse=True)
    return out


@bp.get("/reports/compliance.csv")
@login_required
def reports_compliance_csv():
    try:
        first, last = _period()
        report = fleet.compliance(svc(), first, last, zone=request.args.get("zone") or None, scope=g.scope,
                                  schedule_id=request.args.get("schedule_id", type=int))
    except ServiceError as exc:
        abort(exc.status)
    return Response(fleet.compliance_csv(report), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="compliance-{first}-{last}.csv"'})


@bp.get("/reports/monthly.csv")
@login_required
def reports_monthly_csv():
    try:
        stats = fleet.monthly(svc(), request.args.get("month") or None, g.scope)
    except ServiceError as exc:
        abort(exc.status)
    return Response(fleet.monthly_csv(stats), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="monthly-{stats["month"]}.csv"'})


# ------------------------------------------------------------------------------------------ provisioning
def broker_url() -> str | None:
    """The broker a node connects to: the one the running panel uses, else the configured one."""
    return current_app.config.get("MQTT_URL") or svc().config.MQTT_URL or None


def qr_svg(text: str, title: str) -> Markup:
    """A QR code of ``text`` as inline SVG (segno: pure Python; no style attribute, so the CSP holds), sized by
    CSS (``.qr-box svg.qr``), named for screen readers by its ``<title>``."""
    svg = segno.make(text, error="m").svg_inline(scale=1, border=4, omitsize=True, svgclass="qr", lineclass=None,
                                                 title=title, dark="#000", light="#fff")
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 - segno's own SVG, title escaped


#: How long the credentials page of a new token can be opened again (a reload, Back, the phone's browser
#: reloading a tab) by the person who issued it. After that the token is gone: the panel keeps only its hash.
CREDENTIALS_KEEP_S = 15 * 60


@dataclass
class _Issued:
    node_id: str
    token: str
    user_id: str
    until: float  # on the store's clock


class CredentialsStore:
    """New node tokens waiting to be shown, in the panel process's memory (never in the cookie, never in the
    database): a random one-time id → (node, token, the user who issued it), for ``keep_s`` seconds. The panel
    is one process (a threaded server), so memory is enough; a restart forgets them, which only means issuing
    the token again."""

    def __init__(self, keep_s: float = CREDENTIALS_KEEP_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s = keep_s
        self.clock = clock
        self._items: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def put(self, node_id: str, token: str, user_id: str) -> str:
        """Keep a new token; returns the id of the page that shows it."""
        key = secrets.token_urlsafe(18)
        with self._lock:
            now = self.clock()
            self._items = {k: v for k, v in self._items.items() if v.until > now}
            self._items[key] = _Issued(node_id, token, user_id, now + self.keep_s)
        return key

    def get(self, key: str, node_id: str, user_id: str) -> str | None:
        """The token kept under ``key`` for this node and this user, while it is kept; else None."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item.until <= self.clock():
                self._items.pop(key, None)
                return None
        if item.node_id != node_id or item.user_id != user_id:
            return None
        return item.token


def credentials_store() -> CredentialsStore:
    """The panel's store of new tokens (one per app)."""
    return current_app.extensions.setdefault("node_credentials", CredentialsStore())


def show_credentials(node_id: str, token: str) -> Response:
    """After registering a node or issuing it a new token: keep the token for a while and send the browser to the
    page that shows it (303), so reloading that page shows it again instead of sending the form twice."""
    key = credentials_store().put(node_id, token, str(current_user.get_id()))
    return redirect(url_for("fleet.node_credentials", node_id=node_id, k=key), 303)


@bp.post("/nodes")
@admin_required
def register_node():
    service = svc()
    try:
        node, token = service.register_node(
            request.form.get("node_id", ""), request.form.get("name", ""), request.form.get("zone") or None,
            user=current_user,
        )
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return render_template("nodes.html", nodes=service.list_nodes(g.scope), zones=service.list_zones(g.scope),
                               form=request.form), exc.status
    # Only the token's hash is stored; the page that shows it is a GET of its own (post → redirect → get), so a
    # reload or Back does not register the node twice.
    return show_credentials(node.node_id, token)


@bp.post("/nodes/<node_id>/token")
@admin_required
def rotate_token(node_id: str):
    service = svc()
    try:
        token = service.rotate_node_token(node_id, current_user)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        return redirect(url_for("views.nodes"))
    return show_credentials(node_id, token)


@bp.get("/nodes/<node_id>/credentials")
@admin_required
def node_credentials(node_id: str):
    """The credentials of a new token, for its issuer, for CREDENTIALS_KEEP_S; later (or to anyone else, or once
    the token was replaced) a page that says it is no longer shown and offers a new one."""
    service = svc()
    node = service.get_node(node_id, g.scope)
    if node is None:
        abort(404)
    token = credentials_store().get(request.args.get("k", ""), node_id, str(current_user.get_id()))
    current = service.node_for_token(token) if token else None
    if current is not None and current.node_id == node_id:
        return credentials_page(node, token or "")
    response = make_response(render_template("node_credentials.html", node=node, token=None,
                                             minutes=CREDENTIALS_KEEP_S // 60))  # a page, not an error
    response.headers["Cache-Control"] = "no-store"
    return response


def credentials_page(node: Node, token: str) -> Response:
    """The credentials of a new token: each value with a copy button, a QR code of the provisioning file and the
    file itself to download. Never cached: it holds the token."""
    service = svc()
    cfg = fleet.node_config(service, node, token, broker_url())
    qr = qr_svg(json.dumps(cfg, ensure_ascii=False, separators=(",", ":")),
                _("QR code of the configuration of {node}", node=node.node_id))
    response = make_response(render_template("node_credentials.html", node=node, token=token, cfg=cfg, qr=qr,
                                             minutes=CREDENTIALS_KEEP_S // 60))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/nodes/<node_id>/config")
@admin_required
def node_config_file(node_id: str):
    """The provisioning file (docs/protocol.md §3) of the credentials page: the page posts the token it shows
    (the panel keeps only its hash), and only the node's current token gives a file."""
    service = svc()
    token = request.form.get("token", "")
    node = service.node_for_token(token) if token else None
    if node is None or node.node_id != node_id or service.get_node(node_id, g.scope) is None:
        flash(_("This token is no longer valid: issue a new one to get a configuration file."), "error")
        return redirect(url_for("views.node_detail", node_id=node_id), 303)
    text = fleet.node_config_json(fleet.node_config(service, node, token, broker_url()))
    return Response(text, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="loaphuong-{node.node_id}.json"',
        "Cache-Control": "no-store"})
