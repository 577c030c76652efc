"""OpenAPI 3.1 document for ``/api/v1`` (request schemas generated from the pydantic models)."""

from __future__ import annotations

from typing import Any

from broadcaster.api.schemas import (
    AbbreviationIn,
    AnnouncementIn,
    CommandIn,
    LoginIn,
    NodeIn,
    NormalizeIn,
    ScheduleIn,
    ZoneIn,
)

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
        }
    },
}


def _op(summary: str, *, body: type | None = None, ok: int = 200, auth: bool = True,
        params: list[dict[str, Any]] | None = None, response: str = "object") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "OK", "content": {"application/json": {"schema": {"type": response}}}},
            "400": {"description": "Bad input", "content": {"application/json": {"schema": ERROR}}},
            "401": {"description": "No or bad token", "content": {"application/json": {"schema": ERROR}}},
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
        }
    if not auth:
        op["security"] = []
    else:  # the release policy (broadcaster/policy.py) may refuse any authenticated operation, audited
        op["responses"]["403"] = {"description": "Refused by the release policy (role, scope, two people)",
                                  "content": {"application/json": {"schema": ERROR}}}
    if params:
        op["parameters"] = params
    return op


def _path(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}}


#: Feature modules (``broadcaster/api/routes_*.py``) register here: a callable returning ``{path: {method: op}}``
#: and the request models it references. Keeps each feature's routes and their documentation in one file.
EXTRA_PATHS: list[Any] = []
EXTRA_MODELS: list[type] = []


def spec(server: str = "") -> dict[str, Any]:
    models = [LoginIn, ZoneIn, NodeIn, AnnouncementIn, ScheduleIn, CommandIn, NormalizeIn, AbbreviationIn]
    models += [m for m in EXTRA_MODELS if m not in models]
    schemas: dict[str, Any] = {"Error": ERROR}
    for model in models:
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Loa Phường API",
            "version": "1.0.0",
            "description": "Ward loudspeaker control panel. Obtain a token with POST /api/v1/auth/token and "
            "send it as 'Authorization: Bearer <token>'. Times are RFC 3339; input without an offset "
            "is local time (Asia/Ho_Chi_Minh). Errors: {error: {code, message, field}}.",
        },
        "servers": [{"url": f"{server}/api/v1"}] if server else [{"url": "/api/v1"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/auth/token": {"post": _op("Exchange username/password for an API token", body=LoginIn, ok=201,
                                        auth=False)},
            "/panel-key": {"get": _op("The panel's Ed25519 public key (base64)", auth=False)},
            "/zones": {
                "get": _op("List zones (villages / residential groups)", response="array"),
                "post": _op("Create a zone (admin)", body=ZoneIn, ok=201),
            },
            "/nodes": {
                "get": _op("List loudspeaker nodes with presence", response="array"),
                "post": _op("Register a node (admin); the token in the answer is shown once", body=NodeIn, ok=201),
            },
            "/nodes/{node_id}": {"get": _op("A node with its current signed plan", params=[_path("node_id")])},
            "/nodes/{node_id}/token": {
                "post": _op("Re-provision a node (admin): new token, shown once; its event sequence restarts",
                            ok=201, params=[_path("node_id")])
            },
            "/nodes/{node_id}/commands": {
                "get": _op("Command history of a node", params=[_path("node_id")], response="array"),
                "post": _op("Send a signed command (ping, resync, stop, set_volume)", body=CommandIn, ok=202,
                            params=[_path("node_id")]),
            },
            "/announcements": {
                "get": _op("List announcements", response="array"),
                "post": _op("Create an announcement; speech is rendered at once (status 'ready'), or the draft "
                            "is kept with 'render_error'", body=AnnouncementIn, ok=201),
            },
            "/announcements/{announcement_id}": {
                "get": _op("One announcement", params=[_path("announcement_id", "integer")])
            },
            "/announcements/{announcement_id}/render": {
                "post": _op("Render speech again", params=[_path("announcement_id", "integer")])
            },
            "/announcements/{announcement_id}/audio": {
                "get": {
                    "summary": "The rendered MP3",
                    "parameters": [_path("announcement_id", "integer")],
                    "responses": {"200": {"description": "MP3", "content": {"audio/mpeg": {}}},
                                  "404": {"description": "No audio",
                                          "content": {"application/json": {"schema": ERROR}}}},
                }
            },
            "/normalize": {
                "post": _op("The text the loudspeaker will say (Vietnamese normalization with this ward's "
                            "abbreviations)", body=NormalizeIn)
            },
            "/abbreviations": {
                "get": _op("The ward's abbreviation readings and the defaults"),
                "post": _op("Add or change a ward reading (leader/admin)", body=AbbreviationIn, ok=201),
            },
            "/abbreviations/{abbr}": {
                "delete": {"summary": "Remove a ward reading (leader/admin)", "parameters": [_path("abbr")],
                           "responses": {"204": {"description": "Deleted"},
                                         "404": {"description": "Unknown", "content": {
                                             "application/json": {"schema": ERROR}}}}}
            },
            "/schedules": {
                "get": _op("List schedules", response="array"),
                "post": _op("Schedule an announcement to zones at a time; affected nodes get new plans at once",
                            body=ScheduleIn, ok=201),
            },
            "/schedules/{schedule_id}": {"get": _op("One schedule", params=[_path("schedule_id", "integer")])},
            "/schedules/{schedule_id}/cancel": {
                "post": _op("Cancel a schedule", params=[_path("schedule_id", "integer")])
            },
            "/plays": {
                "get": _op("Proof of play: per node and item, scheduled vs actual start and outcome",
                           params=[_query("schedule_id", "integer"), _query("node_id")], response="array")
            },
        },
    }
    for extra in EXTRA_PATHS:
        for path, ops in extra().items():
            doc["paths"].setdefault(path, {}).update(ops)
    return doc
