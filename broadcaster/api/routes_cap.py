"""CAP 1.2 in ``/api/v1`` (issue 17 §5, broadcaster/cap.py).

* ``GET /api/v1/emergencies/{id}/cap`` — one alert as a CAP 1.2 document (``application/cap+xml``; a token).
* ``GET|POST /api/v1/cap/sources``, ``DELETE /api/v1/cap/sources/{id}`` — the trusted sources (admins:
  ``cap_sources.manage``; ``automatic`` only by the province: ``cap_sources.automatic``).
* ``POST /api/v1/cap`` — a CAP 1.2 document from a trusted source, machine to machine: no token, the body signed
  (``X-CAP-Signature: sha256=<HMAC-SHA256 of the body with the source's key>``, optionally ``X-CAP-Source``).
  201 with the emergency it made (a draft waiting for two people, or released for an automatic source); 200 with
  the alert a ``Cancel`` discarded; 4xx otherwise, audited, nothing stored.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, request
from pydantic import Field

from broadcaster import cap, emergency
from broadcaster.api import contract, openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, err, svc, token_required, ts
from broadcaster.api.routes_emergency import alert_json
from broadcaster.api.schemas import RequestModel, text
from broadcaster.web.common import bearer_token
from broadcaster.web.sessions import over_limit

bp = blueprint("api_cap", __name__)


class CapSourceIn(RequestModel):
    name: str = text(100, "invalid_cap_source_name", description="Who sends, e.g. 'kttv-tinh' (letters, digits, "
                     "space, '.', '_', '-'); may be sent as X-CAP-Source")
    key: str = Field(min_length=cap.MIN_KEY, max_length=200, pattern=r"^[!-~]+$",
                     description="The shared secret the source signs each body with (HMAC-SHA256); "
                     "printable ASCII, never shown again")
    automatic: bool = Field(default=False, description="Its alerts are released at once for the zones their area "
                            "names, without the two-person release (province admin only)")
    ward: str | None = Field(default=None, max_length=64, description="Province admin: the ward whose zones its "
                             "alerts may name (none: every ward). A ward admin's source is her ward's")


def _cap_response(data: bytes) -> Response:
    return Response(data, content_type=cap.CONTENT_TYPE)  # exactly: the XML declaration names UTF-8


def _source_json(src: Any, codes: dict[int, str]) -> dict[str, Any]:
    data = cap.source_json(src, codes)
    return {**data, "created_at": ts(data["created_at"])}


@bp.get("/emergencies/<int:alert_id>/cap")
@token_required()
def emergency_cap(alert_id: int):
    alert = emergency.get_alert(svc(), alert_id, g.scope)
    if alert is None:
        return err("not_found", "no such emergency", 404)
    return _cap_response(cap.alert_document(svc(), alert))


@bp.get("/cap/sources")
@token_required()
def list_cap_sources():
    sources = cap.list_sources(svc(), g.api_user)
    codes = cap.ward_codes(svc(), {s.ward_id for s in sources})
    return jsonify([_source_json(s, codes) for s in sources])


@bp.post("/cap/sources")
@token_required()
def create_cap_source():
    data = body(CapSourceIn)
    src = cap.create_source(svc(), data.name, data.key, data.automatic, g.api_user, data.ward)
    return jsonify(_source_json(src, cap.ward_codes(svc(), {src.ward_id}))), 201


@bp.delete("/cap/sources/<source>")
@token_required()
def delete_cap_source(source: str):
    cap.delete_source(svc(), source, g.api_user)
    return "", 204


#: Messages received per client address (no login: the body is signed) before 429 — a source sends a few an hour.
RECEIVE_LIMIT = "60 per minute"


@bp.post("/cap")
def receive_cap():
    retry = over_limit(RECEIVE_LIMIT, "cap-receive")
    if retry is not None:
        response, status = contract.error_response("rate_limited", "too many CAP messages from this address: "
                                                   f"wait {retry} s", 429)
        response.headers["Retry-After"] = str(retry)
        return response, status
    received = cap.receive(svc(), request.get_data(cache=False), request.headers.get(cap.SIGNATURE_HEADER),
                           request.headers.get(cap.SOURCE_HEADER), request.mimetype,
                           key=request.headers.get(cap.KEY_HEADER) or bearer_token())
    first = received.alerts[0]
    response = jsonify(alert_json(first))
    response.headers["X-CAP-Emergencies"] = ",".join(str(a.id) for a in received.alerts)
    return response, 201 if received.created else 200


def _paths() -> dict[str, Any]:
    op, path = openapi.op, openapi.path
    xml = {"schema": {"type": "string", "maxLength": 1_048_576}}
    return {
        "/emergencies/{alert_id}/cap": {
            "get": op("One emergency, drill or cancellation as an OASIS CAP 1.2 <alert> (status Actual or Exercise, "
                      "msgType Alert or Cancel)", params=[path("alert_id", "integer")], media=cap.CONTENT_TYPE,
                      ok_text="CAP 1.2 document"),
        },
        "/cap/sources": {
            "get": op("Trusted CAP 1.2 sources (admin); keys are never shown", response=list[out.CapSource]),
            "post": op("Trust a CAP 1.2 source (admin): its name and shared key; automatic (province admin): its "
                       "alerts are released at once", body=CapSourceIn, ok=201, response=out.CapSource),
        },
        "/cap/sources/{source}": {
            "delete": op("Stop trusting a CAP source (admin), by id or name: its next message is refused", ok=204,
                         ok_text="Deleted", params=[path("source")]),
        },
        "/cap": {
            "post": op(
                "Receive a CAP 1.2 alert from a trusted source (no token: the body is signed)", auth=False, ok=201,
                response=out.AlertDetail, responses={200: out.AlertDetail}, errors=(401, 403, 409, 415, 422, 429, 503),
                raw_body={"application/cap+xml": xml, "application/xml": xml},
                description="Headers: X-CAP-Signature: sha256=<hex HMAC-SHA256 of the exact body with the source's "
                "shared key> (required); X-CAP-Source: <source name> (optional: without it every source's key is "
                "tried). A sender that cannot sign may present the source's key instead: X-CAP-Key: <key> or "
                "Authorization: Bearer <key>. Answers 201 with the emergency made (pending_release: waits for two "
                "people; released: an "
                "automatic source), 200 with the alert a Cancel discarded; X-CAP-Emergencies lists every alert made "
                "(one per ward the area names). Refused, audited and nothing stored: 401 no or wrong signature, "
                "403 unknown source, 400 not well-formed or not valid against the CAP 1.2 schema, 409 duplicate "
                "identifier of the sender (or a Cancel of an alert that went out), 415 not XML, 422 an area naming "
                "no zone, status Test/System/Draft, msgType Ack/Error."),
        },
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.append(CapSourceIn)
