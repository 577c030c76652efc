"""``/api/v1/wards`` and the province report: one installation, a province of wards (broadcaster/tenancy.py)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from pydantic import Field

from broadcaster import fleet, tenancy
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, csv_response, svc, token_required
from broadcaster.api.schemas import Code, RequestModel, codes, text

bp = blueprint("api_wards", __name__)


class WardIn(RequestModel):
    code: Code = Field(description="Stable code, e.g. 'phuong-1' (lowercase letters, digits, - or _)",
                       json_schema_extra=codes("invalid_ward_code"))
    name: str = text(200, description="Display name, e.g. 'Phường Bến Thành'")


def ward_json(w) -> dict[str, Any]:
    return {"id": w.id, "code": w.code, "name": w.name}


@bp.get("/wards")
@token_required()
def list_wards():
    return jsonify([ward_json(w) for w in tenancy.list_wards(svc(), g.scope)])


@bp.post("/wards")
@token_required()
def create_ward():
    data = body(WardIn)
    return jsonify(ward_json(tenancy.create_ward(svc(), data.code, data.name, g.api_user))), 201


@bp.get("/reports/province")
@token_required()
def report_province():
    return jsonify(fleet.province_report(svc(), request.args.get("month"), g.scope))


@bp.get("/reports/province.csv")
@token_required()
def report_province_csv():
    report = fleet.province_report(svc(), request.args.get("month"), g.scope)
    return csv_response(fleet.province_csv(report), f"province-{report['month']}.csv")


def _paths() -> dict[str, Any]:
    op, query = openapi.op, openapi.query
    month = [query("month", pattern=openapi.MONTH, code="invalid_month"), query("ward")]
    return {
        "/wards": {
            "get": op("Wards the caller sees (a ward user: her own)", response=list[out.Ward]),
            "post": op("Create a ward (province_admin)", body=WardIn, ok=201, response=out.Ward, errors=(409,)),
        },
        "/reports/province": {"get": op("Monthly report per ward: airings planned, played, missed, nodes, nodes "
                                        "online, emergencies (?month=YYYY-MM)", params=month,
                                        response=out.ProvinceReport)},
        "/reports/province.csv": {"get": op("The same report as CSV", params=month, media="text/csv",
                                            ok_text="CSV")},
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.append(WardIn)
