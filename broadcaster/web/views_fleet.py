"""Fleet pages: list with filters, map (Leaflet from our own static files), node detail with remote control,
CSV import/export, proof-of-play reports. Logic lives in broadcaster/fleet.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from broadcaster import fleet, logins
from broadcaster.csvsafe import credentials_csv
from broadcaster.i18n import gettext as _
from broadcaster.services import ServiceError
from broadcaster.web.views import admin_required, bp, error_text, svc

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
    markers = [fleet.marker_json(n, service.config) for n in nodes if n.lat is not None]
    return render_template("fleet_map.html", markers=markers, without_gps=len(nodes) - len(markers),
                           tiles=service.config.MAP_TILES_URL, flt=_filter(), **_choices())


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
    return redirect(url_for("views.fleet_node_page", node_id=node_id))


@bp.post("/fleet/commands")
@login_required
def fleet_command():
    form = request.form
    name = form.get("name", "")
    # Only the fields of the chosen command (the form shows them all), validated by fleet.send like the API's.
    args = {k: form.get(k) for k in fleet.command_fields(name) if form.get(k)}
    target = form.get("target", "node")
    back = logins.safe_next(form.get("next")) or url_for("views.fleet_page")  # never off-site (logins.py)
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


@bp.get("/reports")
@login_required
def reports_page():
    service = svc()
    status = 200
    report: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    try:
        first, last = _period()
        report = fleet.compliance(service, first, last, zone=request.args.get("zone") or None, scope=g.scope,
                                  schedule_id=request.args.get("schedule_id", type=int))
        stats = fleet.monthly(service, request.args.get("month") or None, g.scope)
    except ServiceError as exc:
        flash(error_text(exc), "error")
        status = exc.status
    return render_template("reports.html", report=report, stats=stats, args=request.args,
                           zones=service.list_zones(g.scope)), status


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
