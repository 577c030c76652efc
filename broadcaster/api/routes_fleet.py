"""``/api/v1/fleet``, ``/zones``, ``/nodes``, ``/plays`` and ``/api/v1/reports``: registry (CSV), zones and
node registration, presence, remote control (one command path: ``fleet.send``), proof of play and its reports.

See broadcaster/fleet.py for the rules; these routes only parse, ask the release policy (``token_required``)
and serialise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from flask import g, jsonify, request
from pydantic import ConfigDict, Field

from broadcaster import fleet
from broadcaster.api import contract, openapi
from broadcaster.api import responses as out
from broadcaster.api.base import (
    blueprint,
    body,
    command_json,
    csv_response,
    err,
    node_json,
    play_json,
    svc,
    token_required,
    ts,
    zone_json,
)
from broadcaster.api.schemas import COMMAND_ARGS_SCHEMA, Code, CommandIn, NodeIn, RequestModel, ZoneIn, ZoneLanguagesIn

bp = blueprint("api_fleet", __name__)


class NodeUpdateIn(RequestModel):
    """lat and lon come together (both numbers, or both null / absent)."""

    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"lat": ["lon"], "lon": ["lat"]}, "anyOf": [
        {"properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}},
        {"properties": {"lat": {"type": "null"}, "lon": {"type": "null"}}}]})
    name: str | None = Field(default=None, max_length=200)
    zone: str | None = Field(default=None, max_length=64, description="Zone code ('' = none)")
    ward: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)
    hardware: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$",
                                 description="BCP 47 tag, e.g. vi, vi-x-tay")


class FleetCommandIn(RequestModel):
    """At least one target: node ids, a zone or a ward; the arguments of the command named."""

    model_config = ConfigDict(json_schema_extra={**COMMAND_ARGS_SCHEMA, "anyOf": [
        {"required": ["node_ids"], "properties": {"node_ids": {"minItems": 1}}},
        {"required": ["zone"], "properties": {"zone": {"type": "string", "minLength": 1}}},
        {"required": ["ward"], "properties": {"ward": {"type": "string", "minLength": 1}}}]})
    name: Literal["set_volume", "stop", "play_now", "reboot", "resync", "ping"]
    args: dict[str, Any] = Field(default_factory=dict, description=(
        "set_volume {volume 0–100}; stop {alert_id?}; play_now {announcement_id (approved), repeat 1–10, "
        "gap_ms, volume?, priority normal|priority|emergency}; reboot, resync, ping: none"))
    node_ids: list[Code] = Field(default_factory=list, max_length=10_000, description="Target nodes; or zone / ward")
    zone: str | None = Field(default=None, max_length=64, description="Every node of this zone (code)")
    ward: str | None = Field(default=None, max_length=64, description="Every node of this ward")


def _flag(name: str) -> bool | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    return value.lower() in ("1", "true", "yes", "on")


def _filter() -> fleet.FleetFilter:
    presence = request.args.get("presence") or request.args.get("online") or None
    if presence in ("true", "1"):
        presence = "online"
    elif presence in ("false", "0"):
        presence = "offline"
    return fleet.FleetFilter(ward=request.args.get("ward") or None, zone=request.args.get("zone") or None,
                             presence=presence, drifting=_flag("drifting"), q=request.args.get("q") or None)


@bp.get("/fleet/nodes")
@token_required()
def fleet_nodes():
    service = svc()
    nodes = fleet.list_nodes(service, _filter(), scope=g.scope)
    return jsonify({"summary": fleet.summary(nodes, service.config),
                    "nodes": [fleet.node_json(n, service.config) for n in nodes]})


@bp.get("/fleet/map")
@token_required()
def fleet_map():
    service = svc()
    nodes = fleet.list_nodes(service, _filter(), scope=g.scope)
    return jsonify([fleet.marker_json(n, service.config) for n in nodes if n.lat is not None])


@bp.get("/fleet/nodes/<node_id>")
@token_required()
def fleet_node(node_id: str):
    service = svc()
    fleet.refresh(service)
    node = service.get_node(node_id, g.scope)
    if node is None:
        return err("not_found", f"no node {node_id!r}", 404)
    plan = node.plan_payload or {}
    events = fleet.last_events(service, node_id)
    return jsonify({
        **fleet.node_json(node, service.config),
        "plan": {"version": plan.get("version"), "items": plan.get("items", [])} if plan else None,
        "events": [{"seq": e.seq, "event": e.event, "at": ts(e.at), "item_id": e.item_id, "reason": e.reason,
                    "offset_ms": e.offset_ms} for e in events],
        "commands": [fleet.command_json(c) for c in fleet.commands(service, node_id=node_id, limit=50)],
    })


@bp.patch("/fleet/nodes/<node_id>")
@token_required("admin")
def fleet_update_node(node_id: str):
    data = body(NodeUpdateIn)
    service = svc()
    node = fleet.update_node(service, node_id, data.model_dump(exclude_unset=True), g.api_user)
    return jsonify(fleet.node_json(node, service.config))


@bp.get("/fleet/registry.csv")
@token_required()
def fleet_export():
    return csv_response(fleet.export_csv(svc(), g.scope), "loaphuong-nodes.csv")


@bp.post("/fleet/registry.csv")
@token_required("admin")
def fleet_import():
    """Body: the CSV itself (text/csv) or a multipart form with a ``file`` field. ``?dry_run=1`` checks only."""
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    try:
        result = fleet.import_csv(svc(), data, g.api_user, dry_run=bool(_flag("dry_run")))
    except fleet.ImportRefused as exc:
        return jsonify({"error": {"code": "import_refused", "message": str(exc)},
                        "errors": [e.as_dict() for e in exc.errors]}), 400
    return jsonify(result.as_dict()), 200 if result.dry_run else 201


@bp.get("/fleet/commands")
@token_required()
def fleet_commands():
    service = svc()
    rows = fleet.commands(service, node_id=request.args.get("node_id") or None,
                          status=request.args.get("status") or None,
                          limit=min(request.args.get("limit", 100, type=int) or 100, 1000), scope=g.scope)
    return jsonify([fleet.command_json(c) for c in rows])


@bp.post("/fleet/commands")
@token_required()
def fleet_send_command():
    data = body(FleetCommandIn)
    args = contract.command_args(data.name, data.args)  # its own schema; JSON: "50" is not the number 50
    records = fleet.send(svc(), data.name, args, node_ids=data.node_ids, zone=data.zone, ward=data.ward,
                         user=g.api_user)
    return jsonify([fleet.command_json(c) for c in records]), 202


@bp.get("/reports/compliance")
@token_required()
def report_compliance():
    return jsonify(_compliance())


def _compliance() -> dict[str, Any]:
    service = svc()
    today = service.local(datetime.now(UTC)).date()
    # a week by default: the one ending on ``to`` (today), or, given only ``from``, the one starting then
    if request.args.get("to") or not request.args.get("from"):
        last = fleet.parse_day(request.args.get("to"), "to", today)
        first = fleet.parse_day(request.args.get("from"), "from", last - timedelta(days=6))
    else:
        first = fleet.parse_day(request.args.get("from"), "from", today)
        last = first + timedelta(days=6)
    first, last = min(first, last), max(first, last)  # the same period, whichever way round it was given
    first = max(first, last - timedelta(days=366))  # at most a year: the last one of the range (see from/to)
    return fleet.compliance(service, first, last, zone=request.args.get("zone") or None,
                            schedule_id=request.args.get("schedule_id", type=int), scope=g.scope)


@bp.get("/reports/compliance.csv")
@token_required()
def report_compliance_csv():
    report = _compliance()
    return csv_response(fleet.compliance_csv(report), f"compliance-{report['from']}-{report['to']}.csv")


@bp.get("/reports/monthly")
@token_required()
def report_monthly():
    return jsonify(fleet.monthly(svc(), request.args.get("month"), g.scope))


@bp.get("/reports/monthly.csv")
@token_required()
def report_monthly_csv():
    stats = fleet.monthly(svc(), request.args.get("month"), g.scope)
    return csv_response(fleet.monthly_csv(stats), f"monthly-{stats['month']}.csv")


# ------------------------------------------------------------------------- zones, nodes, commands
@bp.get("/zones")
@token_required()
def list_zones():
    return jsonify([zone_json(z) for z in svc().list_zones(g.scope)])


@bp.post("/zones")
@token_required("admin")
def create_zone():
    data = body(ZoneIn)
    zone = svc().create_zone(data.code, data.name, data.kind, data.ward, user=g.api_user, languages=data.languages)
    return jsonify(zone_json(zone)), 201


@bp.put("/zones/<code>/languages")
@token_required()
def set_zone_languages(code: str):
    data = body(ZoneLanguagesIn)
    return jsonify(zone_json(svc().set_zone_languages(code, data.languages, g.api_user)))


@bp.get("/nodes")
@token_required()
def list_nodes():
    return jsonify([node_json(n) for n in svc().list_nodes(g.scope)])


@bp.post("/nodes")
@token_required("admin")
def register_node():
    data = body(NodeIn)
    service = svc()
    node, token = service.register_node(data.node_id, data.name, data.zone, user=g.api_user)
    return jsonify({
        **node_json(node),
        "token": token,
        "panel_public_key": service.public_key_b64,
        "topic_prefix": service.config.MQTT_PREFIX,
        "broker_url": service.config.MQTT_URL or None,
        "media_base_url": service.config.public_url,
    }), 201


@bp.get("/nodes/<node_id>")
@token_required()
def get_node(node_id: str):
    node = svc().get_node(node_id, g.scope)
    if node is None:
        return err("not_found", f"no node {node_id!r}", 404)
    return jsonify(node_json(node, with_plan=True))


@bp.post("/nodes/<node_id>/token")
@token_required("admin")
def rotate_token(node_id: str):
    """Re-provision a node: a new token (shown once) and a new event epoch (its seq restarts at 1)."""
    service = svc()
    token = service.rotate_node_token(node_id, g.api_user)
    return jsonify({"node_id": node_id, "token": token, "panel_public_key": service.public_key_b64,
                    "topic_prefix": service.config.MQTT_PREFIX}), 201


@bp.delete("/nodes/<node_id>")
@token_required("admin")
def delete_node(node_id: str):
    """Remove a node: the broker refuses its login and drops its session, its retained plan is cleared."""
    svc().delete_node(node_id, g.api_user)
    return "", 204


@bp.get("/nodes/<node_id>/commands")
@token_required()
def list_commands(node_id: str):
    if svc().get_node(node_id, g.scope) is None:
        return err("not_found", f"no node {node_id!r}", 404)
    return jsonify([command_json(c) for c in svc().list_commands(node_id)])


@bp.post("/nodes/<node_id>/commands")
@token_required()
def send_command(node_id: str):
    data = body(CommandIn)
    args = contract.command_args(data.name, data.args)  # its own schema; JSON: "50" is not the number 50
    if svc().get_node(node_id, g.scope) is None:
        return err("not_found", f"no node {node_id!r}", 404)
    (record,) = fleet.send(svc(), data.name, args, node_ids=[node_id], user=g.api_user)
    return jsonify(command_json(record)), 202


# --------------------------------------------------------------------------------- proof of play
@bp.get("/plays")
@token_required()
def plays():
    schedule_id = request.args.get("schedule_id", type=int)
    node_id = request.args.get("node_id") or None
    return jsonify([play_json(p) for p in svc().plays(schedule_id=schedule_id, node_id=node_id, scope=g.scope)])


def _paths() -> dict[str, Any]:
    op, path, query = openapi.op, openapi.path, openapi.query
    filters = [query("ward"), query("zone"), query("presence", enum=["online", "offline", "unknown", "alert", "true",
                                                                        "false", "1", "0"]),
               query("drifting", "boolean"), query("q")]
    period = [query("from", format="date", pattern=openapi.YEARS), query("to", format="date", pattern=openapi.YEARS),
              query("zone"), query("schedule_id", "integer"), query("ward")]
    month = [query("month", pattern=openapi.MONTH, code="invalid_month"), query("ward")]
    node = [path("node_id")]
    return {
        "/zones/{code}/languages": {"put": op(
            "The languages a zone's residents need, in the order they are played (admin); its nodes' plans then "
            "carry each announcement's versions in that order", params=[path("code")], body=ZoneLanguagesIn,
            response=out.Zone, errors=(404,))},
        "/fleet/nodes": {"get": op("Fleet with debounced presence, offline alerts, clock offset, signal, storage; "
                                   "filters ward, zone, presence (online|offline|unknown|alert), drifting, q",
                                   params=filters, response=out.Fleet)},
        "/fleet/map": {"get": op("Map markers (nodes with GPS) coloured by status", params=filters,
                                 response=list[out.Marker])},
        "/fleet/nodes/{node_id}": {
            "get": op("One node: registry, presence, plan, last events, command history", params=node,
                      response=out.FleetNodeDetail),
            "patch": op("Edit a node's registry fields (admin)", body=NodeUpdateIn, params=node,
                        response=out.FleetNode),
        },
        "/fleet/registry.csv": {
            "get": op("Export the registry as CSV (UTF-8 with BOM; formula-like cells neutralised)",
                      media="text/csv", ok_text="CSV", params=[query("ward")]),
            "post": op("Import nodes from CSV (admin): body text/csv or multipart 'file'; upsert by node_id, all or "
                       "nothing (400 import_refused lists every bad row in 'errors'), new nodes' tokens returned "
                       "once; ?dry_run=1 only checks (200)", ok=201, params=[query("dry_run", "boolean")],
                       response=out.ImportResult, responses={200: out.ImportResult}, errors=(415, 503),
                       raw_body={"text/csv": {"schema": {"type": "string", "maxLength": 10_000_000}},
                                 "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                                         "properties": {"file": {"type": "string",
                                                                                 "format": "binary"}}}}}),
        },
        "/fleet/commands": {
            "get": op("Command history with status pending | ok | error | rejected | timed_out",
                      params=[query("node_id"), query("status"), query("limit", "integer", minimum=0, maximum=1000),
                              query("ward")],
                      response=list[out.Command]),
            "post": op("Send a command to nodes, a zone or a ward (volume, stop, play_now of an approved "
                       "announcement, reboot (admin), resync, ping); args are checked against the command's own "
                       "schema", body=FleetCommandIn, ok=202, response=list[out.Command], errors=(409, 503)),
        },
        "/reports/compliance": {"get": op("Proof of play: planned vs played per day, zone and bulletin, "
                                          "compliance %", params=period, response=out.Compliance)},
        "/reports/compliance.csv": {"get": op("The compliance report as CSV", params=period, media="text/csv",
                                              ok_text="CSV")},
        "/reports/monthly": {"get": op("Monthly province statistics: bulletins, airings, minutes, emergencies, "
                                       "success rate", params=month, response=out.Monthly)},
        "/reports/monthly.csv": {"get": op("Monthly statistics as CSV", params=month, media="text/csv",
                                           ok_text="CSV")},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([NodeUpdateIn, FleetCommandIn, fleet.NoArgsIn, fleet.StopIn, fleet.SetVolumeIn,
                             fleet.PlayNowIn])
openapi.NULL_MEANS_DEFAULT.update({"NoArgsIn", "StopIn", "SetVolumeIn", "PlayNowIn"})
