"""``/api/v1/emergencies``: emergency broadcasts and drills ("phát ngay"), see broadcaster/emergency.py."""

from __future__ import annotations

from typing import Annotated, Any

from flask import g, jsonify, request
from pydantic import ConfigDict, Field

from broadcaster import airtime, emergency, policy, tenancy
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, err, local_iso, svc, token_required, ts
from broadcaster.api.schemas import Id, RequestModel, ZoneRef, text

bp = blueprint("api_emergency", __name__)


class EmergencyIn(RequestModel):
    """Exactly one source (text or announcement_id) and at least one target (zones, all_zones or wards)."""

    model_config = ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["text"], "properties": {"text": {"type": "string"}}},
                  {"required": ["announcement_id"], "properties": {"announcement_id": {"type": "integer"}}}],
        "anyOf": [{"required": ["zones"], "properties": {"zones": {"minItems": 1}}},
                  {"required": ["all_zones"], "properties": {"all_zones": {"const": True}}},
                  {"required": ["wards"], "properties": {"wards": {"minItems": 1}}}],
    })
    title: str = text(300, "title_required", "title_too_long", description="Short title, e.g. 'Bão số 3 đổ bộ'")
    text: str | None = text(5000, "emergency_source_required", "text_too_long", default=None,
                            description="Text to speak now (drills get the spoken drill notice); or give "
                            "announcement_id")
    announcement_id: Id | None = Field(default=None, description="An approved announcement with audio")
    zones: list[ZoneRef] = Field(default_factory=list, max_length=500, description="Zone codes or ids; or all_zones")
    all_zones: bool = Field(default=False, description="Every loudspeaker of the panel")
    repeat: int = Field(default=1, ge=1, le=emergency.MAX_REPEAT, description="Times to play")
    gap_ms: int = Field(default=3000, ge=0, le=emergency.MAX_GAP_MS, description="Silence between repeats")
    volume: int | None = Field(default=None, ge=0, le=100, description="Volume for this alert only")
    drill: bool = Field(default=False, description="A drill: labelled as such everywhere, listed apart")
    wards: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=500,
                                                             description="Province alert (province roles): every "
                             "loudspeaker of these wards (codes); released by a second province-level person")


class TwoPersonIn(RequestModel):
    two_person: bool = Field(description="Emergencies and drills need a second leader/admin to release and to "
                             "cancel them (on by default; switching it off is audited)")
    ward: str = Field(default="", max_length=64, description="Ward code ('' = the default for every ward)")


def alert_json(alert, with_deliveries: bool = True) -> dict[str, Any]:
    service = svc()
    with service.db.session() as s:
        codes = tenancy.ward_codes(s, {alert.ward_id})
    names = emergency.user_names(service, (alert.created_by_id, alert.released_by_id, alert.cancelled_by_id,
                                           alert.cancel_requested_by_id))
    pending_cancel = emergency.cancel_pending(alert)
    first = alert.cancel_requested_by_id if pending_cancel else alert.created_by_id
    waiting = alert.status == "pending_release" or pending_cancel
    out: dict[str, Any] = {
        "id": alert.id,
        "kind": alert.kind,
        "drill": alert.drill,
        "title": alert.title,
        "text": alert.text,
        "announcement_id": alert.announcement_id,
        "status": alert.status,
        "all_zones": alert.all_zones,
        "zones": [z.code for z in alert.zones],
        "repeat": alert.repeat,
        "gap_ms": alert.gap_ms,
        "volume": alert.volume,
        "media": {"sha256": alert.media.sha256, "bytes": alert.media.size, "duration_ms": alert.media.duration_ms,
                  "url": service.media_url(alert.media.sha256)} if alert.media else None,
        "created_at": ts(alert.created_at),
        "created_by": names.get(alert.created_by_id or 0),
        "released_at": ts(alert.released_at),
        "released_at_local": local_iso(alert.released_at),
        "released_by": names.get(alert.released_by_id or 0),
        "cancelled_at": ts(alert.cancelled_at),
        "cancelled_by": names.get(alert.cancelled_by_id or 0),
        "cancels_id": alert.cancels_id,
        "cancel_alert_id": alert.cancel_alert_id,
        "cancel_pending": pending_cancel,
        "cancel_requested_at": ts(alert.cancel_requested_at),
        "cancel_requested_by": names.get(alert.cancel_requested_by_id or 0),
        # who can be the second person now (release or cancel), as the policy says
        "can_confirm": [u.username for u in policy.confirmers(service, first, ward_id=alert.ward_id,
                                                              province=alert.ward_id is None)] if waiting else [],
        "ward": codes.get(alert.ward_id) if alert.ward_id is not None else None,
        "wards": [w.code for w in alert.wards],
    }
    if with_deliveries:
        rows = emergency.deliveries(service, alert)
        out["deliveries"] = [
            {**r, "sent_at": ts(r["sent_at"]), "acked_at": ts(r["acked_at"]), "started_at": ts(r["started_at"]),
             "ended_at": ts(r["ended_at"])}
            for r in rows
        ]
        out["summary"] = emergency.summary(rows)
    return out


@bp.post("/emergencies")
@token_required()
def create_emergency():
    data = body(EmergencyIn)
    alert = emergency.create_alert(
        svc(), title=data.title, text=data.text, announcement_id=data.announcement_id, zones=data.zones,
        all_zones=data.all_zones, repeat=data.repeat, gap_ms=data.gap_ms, volume=data.volume, drill=data.drill,
        wards=data.wards, user=g.api_user,
    )
    return jsonify(alert_json(alert)), 201


@bp.get("/emergencies")
@token_required()
def list_emergencies():
    drill = (request.args.get("drill") or "false").lower() in ("1", "true", "yes")
    return jsonify([alert_json(a, with_deliveries=False)
                    for a in emergency.list_alerts(svc(), drill=drill, scope=g.scope)])


@bp.get("/emergencies/<int:alert_id>")
@token_required()
def get_emergency(alert_id: int):
    alert = emergency.get_alert(svc(), alert_id, g.scope)
    if alert is None:
        return err("not_found", "no such emergency", 404)
    return jsonify(alert_json(alert))


@bp.post("/emergencies/<int:alert_id>/release")
@token_required()
def release_emergency(alert_id: int):
    return jsonify(alert_json(emergency.release_alert(svc(), alert_id, g.api_user)))


@bp.post("/emergencies/<int:alert_id>/cancel")
@token_required()
def cancel_emergency(alert_id: int):
    alert = emergency.cancel_alert(svc(), alert_id, g.api_user)
    # 202: a first person's cancel request, waiting for the second person (nothing sent yet)
    return jsonify(alert_json(alert)), 202 if emergency.cancel_pending(alert) else 200


@bp.get("/emergency-settings")
@token_required()
def get_emergency_settings():
    ward = airtime.settings_ward(svc(), g.api_user, request.args.get("ward", ""))
    return jsonify({"two_person": emergency.two_person_required(svc(), wards=[ward] if ward else []),
                    "ward": ward, "cancel_text": emergency.CANCEL_TEXT, "max_repeat": emergency.MAX_REPEAT})


@bp.post("/emergency-settings")
@token_required()
def set_emergency_settings():
    data = body(TwoPersonIn)
    ward = airtime.settings_ward(svc(), g.api_user, data.ward)
    emergency.set_two_person(svc(), data.two_person, g.api_user, ward)
    return jsonify({"two_person": emergency.two_person_required(svc(), wards=[ward] if ward else []),
                    "ward": ward, "cancel_text": emergency.CANCEL_TEXT, "max_repeat": emergency.MAX_REPEAT})


def _paths() -> dict[str, Any]:
    op, path, query = openapi.op, openapi.path, openapi.query
    alert_id = [path("alert_id", "integer")]
    return {
        "/emergencies": {
            "post": op("Emergency broadcast ('phát ngay') or drill to zones or all nodes: sent at once as signed "
                       "play_now commands, or waiting for a second leader/admin when two-person release is on "
                       "(status pending_release)", body=EmergencyIn, ok=201, response=out.AlertDetail,
                       errors=(409, 503)),
            "get": op("Live emergencies, newest first; ?drill=true lists drills instead (never mixed)",
                      params=[query("drill", "boolean"), query("ward")], response=list[out.Alert]),
        },
        "/emergencies/{alert_id}": {
            "get": op("One emergency with per-node deliveries (pending/acked/started/finished/stopped/failed/"
                      "timeout) and their summary", params=alert_id, response=out.AlertDetail),
        },
        "/emergencies/{alert_id}/release": {
            "post": op("Release a pending emergency (leader/admin other than its creator)", params=alert_id,
                       response=out.AlertDetail, errors=(409, 503)),
        },
        "/emergencies/{alert_id}/cancel": {
            "post": op("Cancel: stop it on every node and play the pre-built cancellation (a pending one is "
                       "just discarded). With two-person release on, the first leader/admin's call answers 202 "
                       "(cancel_pending, nothing sent) and a second, different leader/admin's call sends it",
                       params=alert_id, response=out.AlertDetail, responses={202: out.AlertDetail},
                       errors=(409, 503)),
        },
        "/emergency-settings": {
            "get": op("Emergency settings (two-person release, cancellation text)", params=[query("ward")],
                      response=out.EmergencySettings),
            "post": op("Turn two-person release on or off (admin; audited)", body=TwoPersonIn,
                       response=out.EmergencySettings),
        },
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.extend([EmergencyIn, TwoPersonIn])
