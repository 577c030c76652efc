"""``/api/v1/stream-sources``: the live streams the ward may relay (an admin keeps the list; see
broadcaster/streams.py). Programme items name a source; nobody types a stream URL into a schedule."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify
from pydantic import Field

from broadcaster import streams
from broadcaster.api import openapi
from broadcaster.api import responses as out
from broadcaster.api.base import blueprint, body, svc, token_required
from broadcaster.api.schemas import Code, RequestModel, codes, text

bp = blueprint("api_streams", __name__)


class StreamSourceIn(RequestModel):
    code: Code = Field(description="Short code officers pick, e.g. 'vov1'", json_schema_extra=codes(
        "invalid_source_code"))
    name: str = text(200, "required", description="Name shown to officers, e.g. 'VOV1 — Thời sự'")
    url: str = Field(max_length=2000, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$",
                     json_schema_extra=codes("invalid_stream_url"), description="http(s) URL of the live stream")


@bp.get("/stream-sources")
@token_required()
def list_stream_sources():
    return jsonify([streams.source_json(x) for x in streams.list_sources(svc())])


@bp.post("/stream-sources")
@token_required()
def create_stream_source():
    data = body(StreamSourceIn)
    src = streams.create_source(svc(), data.code, data.name, data.url, g.api_user)
    return jsonify(streams.source_json(src)), 201


@bp.delete("/stream-sources/<source>")
@token_required()
def delete_stream_source(source: str):
    streams.remove_source(svc(), source, g.api_user)
    return "", 204


def _paths() -> dict[str, Any]:
    op, path = openapi.op, openapi.path
    return {
        "/stream-sources": {
            "get": op("Stream sources the ward may relay (schedules name one in a stream item)",
                      response=list[out.StreamSource]),
            "post": op("Add a stream source (admin)", body=StreamSourceIn, ok=201, response=out.StreamSource,
                       errors=(409,)),
        },
        "/stream-sources/{source}": {
            "delete": op("Remove a stream source (admin): every plan relaying it is rebuilt without it",
                         ok=204, ok_text="Deleted", params=[path("source")]),
        },
    }


openapi.EXTRA_PATHS.append(_paths)
openapi.EXTRA_MODELS.append(StreamSourceIn)
