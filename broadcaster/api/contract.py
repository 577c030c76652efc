"""The API keeps its OpenAPI contract: one JSON error shape in the request's language, never HTML under
``/api/v1``, query parameters checked against the document, and (in tests) every answer checked too.

``install(app)`` is called once by ``create_app``. The document itself is ``broadcaster/api/openapi.py``.
"""

from __future__ import annotations

import logging
import re
from datetime import date
from functools import cache
from typing import Any

import jsonschema
from flask import Flask, Response, current_app, g, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from broadcaster import fleet
from broadcaster.api import openapi
from broadcaster.errors import ServiceError
from broadcaster.i18n import error_message

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
#: Largest id a path accepts (ids are 32-bit in every table); a larger one is simply not found.
MAX_ID = 2**31 - 1


class BoundedInt(IntegerConverter):
    """``<int:…>`` of at most ten digits: a 40-digit id is a 404, never a database overflow (a ten-digit id
    above 2³¹−1 simply finds nothing)."""

    regex = r"\d{1,10}"


# -------------------------------------------------------------------------------------------- language
def api_locale() -> str:
    """``?lang=`` or the best of ``Accept-Language`` among vi/en; Vietnamese when nothing is asked."""
    asked = request.args.get("lang")
    if asked in ("vi", "en"):
        return asked
    best = request.accept_languages.best_match(["vi", "en"])
    return best or "vi"


#: Vietnamese for pydantic's error types (the field path is shown separately).
_FIELD_VI = {
    "missing": "Thiếu trường bắt buộc.",
    "extra_forbidden": "Trường này không được phép.",
    "string_type": "Phải là chuỗi ký tự.",
    "int_type": "Phải là số nguyên.",
    "int_parsing": "Phải là số nguyên.",
    "float_type": "Phải là số.",
    "bool_type": "Phải là true hoặc false.",
    "list_type": "Phải là danh sách.",
    "dict_type": "Phải là đối tượng JSON.",
    "model_type": "Phải là đối tượng JSON.",
    "literal_error": "Giá trị không nằm trong danh sách cho phép.",
    "enum": "Giá trị không nằm trong danh sách cho phép.",
    "string_too_long": "Quá dài.",
    "string_too_short": "Quá ngắn.",
    "too_long": "Quá nhiều phần tử.",
    "too_short": "Quá ít phần tử.",
    "greater_than_equal": "Giá trị quá nhỏ.",
    "greater_than": "Giá trị quá nhỏ.",
    "less_than_equal": "Giá trị quá lớn.",
    "less_than": "Giá trị quá lớn.",
    "string_pattern_mismatch": "Không đúng định dạng.",
    "finite_number": "Phải là số hữu hạn.",
    "union_tag_invalid": "Giá trị không hợp lệ.",
    "value_error": "Giá trị không hợp lệ.",
}


def field_errors(exc: ValidationError, locale: str) -> list[dict[str, str]]:
    out = []
    for e in exc.errors(include_url=False)[:50]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if not str(p).startswith("function-"))
        kind = str(e.get("type", "value_error"))
        text = str(e.get("msg", "invalid"))
        if locale != "en":
            text = _FIELD_VI.get(kind, "Giá trị không hợp lệ.")
        out.append({"field": loc or "body", "code": kind, "message": text})
    return out


def error_code(model: type | None, exc: ValidationError) -> str:
    """The refusal's code: ``invalid_field``, or the field's own code where the model names one
    (``json_schema_extra={"x-error-codes": {"invalid": "title_required", "too_long": "title_too_long"}}``: the
    codes the service layer uses for the same mistake, so a client sees one code whoever caught it)."""
    errors = exc.errors(include_url=False)
    if model is None or not errors or not errors[0].get("loc"):
        return "invalid_field"
    info = getattr(model, "model_fields", {}).get(str(errors[0]["loc"][0]))
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    codes = extra.get("x-error-codes") or {}
    kind = "too_long" if str(errors[0].get("type")) in ("string_too_long", "too_long") else "invalid"
    return codes.get(kind) or codes.get("invalid") or "invalid_field"


def invalid(exc: ValidationError, model: type | None = None) -> ServiceError:
    """A pydantic refusal as the API's 400 naming every field at fault (``invalid_field`` or the field's own
    code, see :func:`error_code`)."""
    fields = field_errors(exc, "en")
    first = fields[0] if fields else {"field": "body", "message": "invalid"}
    err = ServiceError(error_code(model, exc), f"{first['field']}: {first['message']}", first["field"],
                       fields=fields)
    err.validation = exc  # type: ignore[attr-defined]  # its fields are re-translated when answered
    return err


def command_args(name: str, args: Any) -> Any:
    """A command's arguments checked against its own model (broadcaster/fleet.py) as JSON, refused like any
    other body field (``args.<name>`` in ``field`` and ``fields``); the checked model goes on to ``fleet.send``."""
    try:
        return fleet.validate_args(name, args, json=True)
    except ServiceError as exc:
        if exc.code != "invalid_field":
            raise
        where = f"args.{exc.field}" if exc.field and exc.field != "args" else "args"
        text = exc.message.split(": ", 1)[-1]
        raise ServiceError("invalid_field", f"{where}: {text}", where,
                           fields=[{"field": where, "code": "invalid", "message": text}]) from exc


def error_response(code: str, message: str, status: int, field: str | None = None,
                   fields: list[dict[str, str]] | None = None, **extra: Any) -> tuple[Response, int]:
    locale = api_locale()
    body: dict[str, Any] = {"code": code, "message": error_message(code, message, locale)}
    if field:
        body["field"] = field
    if fields:
        body["fields"] = fields
    return jsonify({"error": body, **extra}), status


def service_error_response(exc: ServiceError) -> tuple[Response, int]:
    fields = None
    validation = getattr(exc, "validation", None)
    if validation is not None:
        fields = field_errors(validation, api_locale())
    elif getattr(exc, "fields", None):
        fields = exc.fields
    extra: dict[str, Any] = {}
    if getattr(exc, "conflicts", None) is not None:
        extra["conflicts"] = exc.conflicts
    response, status = error_response(exc.code, exc.message, exc.status, exc.field, fields, **extra)
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        response.headers["Retry-After"] = str(int(retry))
    return response, status


# ------------------------------------------------------------------------------------ query parameters
_INT = re.compile(r"^-?[0-9]{1,12}$")
_BOOL = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _template(rule: str) -> str:
    """``/api/v1/nodes/<node_id>`` → ``/nodes/{node_id}`` (OpenAPI's form)."""
    path = rule[len(PREFIX):] if rule.startswith(PREFIX) else rule
    return re.sub(r"<(?:[a-z_]+:)?([a-zA-Z_]+)>", r"{\1}", path)


def check_query() -> None:
    """Refuse (400) a documented query parameter whose value does not fit its schema, and any string with
    characters no database can store (lone surrogates, NUL)."""
    for key, value in (request.view_args or {}).items():
        if isinstance(value, str) and ("\x00" in value or _has_surrogate(value)):
            raise ServiceError("invalid_path", f"{key}: characters that cannot be stored", key)
    if request.url_rule is None:
        return
    op = openapi.operation(_template(request.url_rule.rule), request.method)
    if op is None:
        return
    for param in op.get("parameters", []):  # a value no database stores never reaches a query
        for value in request.args.getlist(param["name"]) if param.get("in") == "query" else []:
            if "\x00" in value or _has_surrogate(value):
                raise ServiceError("invalid_query", f"{param['name']}: characters that cannot be stored",
                                   param["name"])
    for param in op.get("parameters", []):
        if param.get("in") != "query":
            continue
        name, schema = param["name"], param.get("schema", {})
        values = request.args.getlist(name)
        if not values:
            continue
        value = values[-1]
        kind = schema.get("type")
        code = param.get("x-error-code", "invalid_query")
        if kind == "integer":
            if not _INT.match(value.strip()):
                raise ServiceError(code, f"{name}: an integer", name)
            number = int(value)
            if number < schema.get("minimum", -(2**63)) or number > schema.get("maximum", 2**63):
                raise ServiceError(code, f"{name}: out of range", name)
        elif kind == "boolean":
            if value.strip().lower() not in _BOOL:
                raise ServiceError(code, f"{name}: true or false", name)
        elif kind == "string":
            if len(value) > schema.get("maxLength", 10_000) or len(value) < schema.get("minLength", 0):
                raise ServiceError(code, f"{name}: too long", name)
            if "enum" in schema and value not in schema["enum"]:
                raise ServiceError(code, f"{name}: one of {', '.join(schema['enum'])}", name)
            pattern = schema.get("pattern")
            if pattern and not re.search(pattern, value):
                raise ServiceError(code, f"{name}: wrong format", name)
            if schema.get("format") == "date":
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ServiceError(code, f"{name}: a date YYYY-MM-DD", name) from None
                if len(value) != 10:
                    raise ServiceError(code, f"{name}: a date YYYY-MM-DD", name)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_json(value: Any, path: str = "body") -> Any:
    """A JSON body as the models take it: strings a database cannot store (lone surrogates, NUL) and numbers
    JSON cannot carry (NaN, Infinity) refused; an integral float (``5.0``) is the integer JSON Schema says it
    is. Returns the cleaned value."""
    if isinstance(value, str):
        if "\x00" in value or _has_surrogate(value):
            raise ServiceError("invalid_field", f"{path}: characters that cannot be stored", path)
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ServiceError("invalid_field", f"{path}: not a finite number", path)
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            clean_json(k, path)
            out[k] = clean_json(v, f"{path}.{k}" if path != "body" else str(k))
        return out
    if isinstance(value, list):
        return [clean_json(v, f"{path}.{i}") for i, v in enumerate(value)]
    return value


# ------------------------------------------------------------------------------ answers (in the tests)
@cache
def _validator(path: str, method: str, status: str):
    op = openapi.operation(path, method)
    if op is None:
        return None
    answer = op["responses"].get(status)
    if answer is None:
        return "undocumented"
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    doc = openapi.spec()
    full = {**schema, "components": doc["components"]}
    return jsonschema.Draft202012Validator(full, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def check_answer(response: Response) -> None:
    """Test mode: an answer the document does not describe is a bug — fail loudly (the test sees a 500)."""
    if (request.url_rule is None or not request.path.startswith(PREFIX) or response.status_code >= 500
            or response.status_code == 405):  # 405: a method the path does not have (not an operation)
        return
    template = _template(request.url_rule.rule)
    validator = _validator(template, request.method, str(response.status_code))
    if validator == "undocumented":
        raise AssertionError(f"{request.method} {template}: status {response.status_code} is not documented")
    if validator is None or not response.is_json:
        return
    errors = sorted(validator.iter_errors(response.get_json()), key=str)
    if errors:
        raise AssertionError(f"{request.method} {template} {response.status_code}: the answer breaks its schema: "
                             f"{errors[0].message} at {list(errors[0].absolute_path)}")


# ----------------------------------------------------------------------------------------------- setup
def install(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedInt

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            page = current_app.extensions.get("web_error_page")  # the panel's own page (broadcaster/web)
            return page(exc) if page is not None else exc
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                429: "rate_limited"}.get(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"))
        response, status = error_response(code, exc.description or exc.name or "error", exc.code or 500)
        for header in ("Allow", "Retry-After"):
            value = exc.get_response().headers.get(header)
            if value:
                response.headers[header] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # (an HTTPException goes to the handler above)
        if not request.path.startswith(PREFIX):
            raise exc
        if current_app.config.get("TESTING"):
            raise exc
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response("internal_error", "unexpected error; it was logged", 500)

    @app.before_request
    def _api_locale() -> None:
        if request.path.startswith(PREFIX):
            g.locale = api_locale()

    @app.after_request
    def _api_options(response: Response) -> Response:
        """Flask's automatic OPTIONS answer is an empty text/html page: under /api/v1, 204 with ``Allow``."""
        if request.method == "OPTIONS" and request.path.startswith(PREFIX) and response.status_code == 200 \
                and not response.get_data():
            response.status_code = 204
            response.headers.pop("Content-Type", None)
        return response

    if app.config.get("VALIDATE_API_RESPONSES"):
        @app.after_request
        def _check(response: Response) -> Response:
            check_answer(response)
            return response
