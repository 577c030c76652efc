"""OpenAPI 3.1 document for ``/api/v1``: the contract integrators generate clients from.

Request and response bodies are the pydantic models of ``schemas.py`` / the feature modules (requests) and
``responses.py`` (answers). Every operation declares every status code it can return: the common ones are
added here (400 bad input, 401 no token, 403 refused by the release policy, 404 unknown resource or ward, 413
body too large, 429 rate limited, 503 busy), each as the one error shape ``Error``. The app validates query
parameters against this document (broadcaster/api/contract.py), and in the tests validates every answer.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from broadcaster.api import responses as out
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

#: The error shape as a reference (kept for feature modules that build responses by hand).
ERROR = {"$ref": "#/components/schemas/Error"}

#: Dates the panel reports on: years 1970–2999 (with ``format: date``).
YEARS = r"^(19[7-9][0-9]|2[0-9]{3})-"
MONTH = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"

#: Default description per status code.
STATUS_TEXT = {
    400: "Bad input: {error: {code, message, field, fields: [{field, code, message}]}}",
    401: "No valid API token (Authorization: Bearer <token>)",
    403: "Refused by the release policy (role, scope, two people); audited",
    404: "No such resource in the caller's scope (or unknown ?ward=)",
    409: "Conflicts with the current state",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests: wait Retry-After seconds",
    503: "Busy or a required service did not confirm: retry later (Retry-After)",
}

#: Every request may be refused as bad input or too large, every caller may be rate-limited; every change
#: (an operation with a body, or answering 201/202/204) may conflict with the current state (409).
COMMON_ERRORS = (400, 413, 429)
AUTH_ERRORS = (401, 403, 404)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _response_schema(response: Any) -> dict[str, Any] | None:
    """A model → its $ref; ``list[Model]`` → an array of it; ``None`` → no body."""
    if response is None:
        return None
    if typing.get_origin(response) is list:
        (item,) = typing.get_args(response)
        return {"type": "array", "items": _ref(item)}
    if isinstance(response, type) and issubclass(response, BaseModel):
        return _ref(response)
    raise TypeError(f"not a response model: {response!r}")


def op(summary: str, *, body: type | None = None, ok: int = 200, auth: bool = True,
       params: list[dict[str, Any]] | None = None, response: Any = None, errors: tuple[int, ...] = (),
       media: str | None = None, ok_text: str = "OK", description: str | None = None,
       responses: dict[int, Any] | None = None, body_required: bool = True,
       raw_body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One operation. ``response``: a ``responses.py`` model, ``list[Model]``, or None (no body, e.g. 204);
    ``media``: a non-JSON answer (``text/csv``, ``audio/mpeg``); ``errors``: status codes this operation may
    return besides the common ones; ``responses``: extra ``{status: model}`` answers (e.g. 202)."""
    answers: dict[str, Any] = {}
    if media is not None:
        answers[str(ok)] = {"description": ok_text, "content": {media: {"schema": {"type": "string"}}}}
    else:
        schema = _response_schema(response)
        answers[str(ok)] = {"description": ok_text, **({"content": _json(schema)} if schema else {})}
    for status, model in (responses or {}).items():
        schema = _response_schema(model)
        answers[str(status)] = {"description": STATUS_TEXT.get(status, "OK"),
                                **({"content": _json(schema)} if schema else {})}
    codes = set(COMMON_ERRORS) | set(errors) | (set(AUTH_ERRORS) if auth else set())
    if body is not None or ok in (201, 202, 204):  # a change may conflict with the current state
        codes.add(409)
    for status in sorted(codes):
        answers.setdefault(str(status), {"description": STATUS_TEXT.get(status, "Error"),
                                         "content": _json(ERROR)})
    op: dict[str, Any] = {"summary": summary, "responses": answers}
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": _json(_ref(body))}
        op.setdefault("x-models", []).append(body)
    if raw_body is not None:  # a non-JSON body (CSV, multipart): {media type: {schema}}
        op["requestBody"] = {"required": body_required, "content": raw_body}
    for model in [response, *(responses or {}).values()]:
        if typing.get_origin(model) is list:
            model = typing.get_args(model)[0]
        if isinstance(model, type) and issubclass(model, BaseModel):
            op.setdefault("x-out-models", []).append(model)
    if not auth:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def path(name: str, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":
        schema.update(minimum=1, maximum=2**31 - 1)
    else:
        schema.update(minLength=1, maxLength=200, pattern=NO_NUL)
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query(name: str, kind: str = "string", *, description: str | None = None, code: str | None = None,
          **constraints: Any) -> dict[str, Any]:
    """An optional query parameter. The app refuses (400 ``invalid_query``, or ``code``) a value that does not
    match its schema."""
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":
        schema.update(minimum=0, maximum=2**31 - 1)
    elif kind == "string":
        schema.update(maxLength=200)
        if "format" not in constraints and "pattern" not in constraints and "enum" not in constraints:
            schema["pattern"] = NO_NUL
    schema.update(constraints)
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if code or constraints.get("format") == "date":
        param["x-error-code"] = code or "invalid_date"
    if description:
        param["description"] = description
    return param


#: Feature modules (``broadcaster/api/routes_*.py``) register here: a callable returning ``{path: {method: op}}``
#: and the request models it references. Keeps each feature's routes and their documentation in one file.
EXTRA_PATHS: list[Any] = []
EXTRA_MODELS: list[type] = []
#: Models whose optional fields also take null, meaning "the default" (the command arguments: fleet.py drops
#: null arguments before checking them).
NULL_MEANS_DEFAULT: set[str] = set()


def _openapi_op() -> dict[str, Any]:
    document = op("This document (OpenAPI 3.1)", auth=False)
    document["responses"]["200"] = {"description": "OpenAPI 3.1 document",
                                    "content": _json({"type": "object", "required": ["openapi", "paths"]})}
    return document


def _core_paths() -> dict[str, Any]:
    node = [path("node_id")]
    aid = [path("announcement_id", "integer")]
    return {
        "/openapi.json": {"get": _openapi_op()},
        "/auth/token": {"post": op("Exchange username/password for a new API token (each login gets its own; the "
                                   "others keep working until revoked)", body=LoginIn, ok=201, auth=False,
                                   response=out.Token, errors=(401,))},
        "/panel-key": {"get": op("The panel's Ed25519 public key (base64)", auth=False, response=out.PanelKey)},
        "/zones": {
            "get": op("List zones (villages / residential groups)", response=list[out.Zone], params=[query("ward")]),
            "post": op("Create a zone (admin)", body=ZoneIn, ok=201, response=out.Zone, errors=(409,)),
        },
        "/nodes": {
            "get": op("List loudspeaker nodes with presence", response=list[out.Node], params=[query("ward")]),
            "post": op("Register a node (admin); the token in the answer is shown once", body=NodeIn, ok=201,
                       response=out.NodeCredentials, errors=(409, 503)),
        },
        "/nodes/{node_id}": {
            "get": op("A node with its current signed plan", params=node, response=out.NodeWithPlan),
            "delete": op("Delete a node (admin): the broker refuses its token and closes its session at once; its "
                         "retained plan is cleared; its history stays", params=node, ok=204, ok_text="Deleted",
                         errors=(503,)),
        },
        "/nodes/{node_id}/token": {
            "post": op("Re-provision a node (admin): new token, shown once; its event sequence restarts",
                       ok=201, params=node, response=out.NodeToken, errors=(503,))
        },
        "/nodes/{node_id}/commands": {
            "get": op("Command history of a node", params=node, response=list[out.Command]),
            "post": op("Send a signed command (ping, resync, stop, set_volume, reboot, play_now); args are checked "
                       "against the command's own schema", body=CommandIn, ok=202, params=node,
                       response=out.Command, errors=(409, 503)),
        },
        "/announcements": {
            "get": op("List announcements (the archived ones only with archived=true); q: words of the title or "
                      "text; approval: one approval state", response=list[out.Announcement],
                      params=[query("ward"), query("archived", "boolean"), query("q"),
                              query("approval", enum=["draft", "submitted", "approved", "rejected", "published"])]),
            "post": op("Create an announcement; speech is rendered at once (status 'ready'), or the draft "
                       "is kept with 'render_error'", body=AnnouncementIn, ok=201, response=out.Announcement,
                       errors=(503,)),
        },
        "/announcements/{announcement_id}": {
            "get": op("One announcement", params=aid, response=out.Announcement)
        },
        "/announcements/{announcement_id}/render": {
            "post": op("Render speech again", params=aid, response=out.Announcement, errors=(409, 503))
        },
        "/announcements/{announcement_id}/archive": {
            "post": op("Delete an announcement with undo (archive): hidden from the list, never played, cannot be "
                       "scheduled; its author or a leader/admin; 409 while an active schedule will still play it",
                       params=aid, response=out.Announcement, errors=(409,))
        },
        "/announcements/{announcement_id}/restore": {
            "post": op("Undo a delete (restore an archived announcement), as it was", params=aid,
                       response=out.Announcement)
        },
        "/announcements/{announcement_id}/audio": {
            "get": op("The rendered MP3", params=aid, media="audio/mpeg", ok_text="MP3")
        },
        "/normalize": {
            "post": op("The text the loudspeaker will say (Vietnamese normalization with this ward's "
                       "abbreviations)", body=NormalizeIn, response=out.Normalized)
        },
        "/abbreviations": {
            "get": op("The ward's abbreviation readings and the defaults", response=out.Abbreviations),
            "post": op("Add or change a ward reading (leader/admin)", body=AbbreviationIn, ok=201,
                       response=out.Abbreviation),
        },
        "/abbreviations/{abbr}": {
            "delete": op("Remove a ward reading (leader/admin)", params=[path("abbr")], ok=204, ok_text="Deleted")
        },
        "/plays": {
            "get": op("Proof of play: per node and item, scheduled vs actual start and outcome",
                      params=[query("schedule_id", "integer"), query("node_id"), query("ward")],
                      response=list[out.Play])
        },
    }


def _component_schemas(ops: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = [LoginIn, ZoneIn, NodeIn, AnnouncementIn, ScheduleIn, CommandIn, NormalizeIn, AbbreviationIn,
              *EXTRA_MODELS]
    outputs: list[type[BaseModel]] = [out.Error]
    for o in ops:
        inputs += o.pop("x-models", [])
        outputs += o.pop("x-out-models", [])
    pairs: list[tuple[type[BaseModel], Any]] = []
    for model in dict.fromkeys(inputs):
        pairs.append((model, "validation"))
    for model in dict.fromkeys(outputs):
        pairs.append((model, "serialization"))
    _, top = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    defs = top.get("$defs", {})
    _bounds(defs)
    for name in NULL_MEANS_DEFAULT & set(defs):
        required = set(defs[name].get("required", []))
        for field, schema in defs[name].get("properties", {}).items():
            if field not in required and "anyOf" not in schema:
                defs[name]["properties"][field] = {"anyOf": [schema, {"type": "null"}]}
    names = {m.__name__ for m, mode in pairs if mode == "validation"}
    for name, schema in defs.items():  # what the panel takes; its answers may quote anything back
        if name.removesuffix("-Input") in names:
            _no_nul(schema)
    return defs


_BOUND_KEYS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _bounds(node: Any) -> None:
    """pydantic leaves ``ge``/``le`` as they are on an annotated type with its own validator (fleet.Whole): the
    document spells them as JSON Schema does."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for key, name in _BOUND_KEYS.items():
                if key in node:
                    node[name] = node.pop(key)
        for value in node.values():
            _bounds(value)
    elif isinstance(node, list):
        for value in node:
            _bounds(value)


#: No string the panel takes may hold NUL (no database stores it): the document says so, the API refuses it.
NO_NUL = r"^[^\u0000]*$"


def _no_nul(node: Any) -> None:
    """Every string schema of the document excludes NUL (a pattern, or ``not`` beside an existing one)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node and "const" not in node \
                and node.get("format") not in ("binary", "date", "date-time"):
            if "pattern" not in node:
                node["pattern"] = NO_NUL
            elif "\\u0000" not in node["pattern"]:
                node["not"] = {"pattern": "\\u0000"}
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


@cache
def _document() -> dict[str, Any]:
    paths = _core_paths()
    for extra in EXTRA_PATHS:
        for p, ops in extra().items():
            paths.setdefault(p, {}).update(ops)
    ops = [o for item in paths.values() for o in item.values()]
    schemas = _component_schemas(ops)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loa Phường API",
            "version": "1.0.0",
            "description": "Ward loudspeaker control panel. Obtain a token with POST /api/v1/auth/token and "
            "send it as 'Authorization: Bearer <token>'. Times are RFC 3339; input without an offset is local "
            "time (Asia/Ho_Chi_Minh). Every error is JSON, never HTML: {error: {code, message, field, fields}}; "
            "message in the request's language (Accept-Language: vi, en; Vietnamese by default).",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def spec(server: str = "") -> dict[str, Any]:
    doc = dict(_document())
    doc["servers"] = [{"url": f"{server}/api/v1"}]
    return doc


def operation(path: str, method: str) -> dict[str, Any] | None:
    """The documented operation for an OpenAPI path template (``/nodes/{node_id}``) and method."""
    return _document()["paths"].get(path, {}).get(method.lower())
