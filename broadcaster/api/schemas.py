"""Request bodies of the REST API (pydantic; the OpenAPI document is generated from them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The bounds below are the contract: the JSON Schema in the OpenAPI document is generated from these models,
#: and the same models refuse (400) what does not fit, so what the document calls valid is what the panel takes.
#: Strict: a number is never accepted as a string, nor "5" as a number, nor 0 as false.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
#: Codes of zones, wards, nodes, stream sources: what devices/protocol.py NODE_ID_RE accepts.
CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Code = Annotated[str, Field(pattern=CODE_PATTERN, min_length=1, max_length=64)]
#: White space as Python (str.isspace, what the services strip and refuse) and JavaScript regular expressions (the
#: document's ``\s``) see it, together: patterns name these characters instead of ``\s``, so the document, the
#: models and the services agree on every character.
WS = r"\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
#: A zone named by its code, or by its id.
ZoneRef = Annotated[str, Field(pattern=CODE_PATTERN, min_length=1, max_length=64)] | Id
#: An ISO 639 language code ('vi', 'km', 'hnj', 'cjm-VN'); broadcaster/languages.py lower-cases it.
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
LanguageCode = Annotated[str, Field(pattern=LANGUAGE_PATTERN, min_length=2, max_length=12)]


def codes(invalid: str, too_long: str | None = None) -> dict[str, Any]:
    """The field's own error codes (broadcaster/api/contract.py ``error_code``), as the service layer names the
    same mistakes; published in the document as ``x-error-codes``."""
    return {"x-error-codes": {"invalid": invalid, **({"too_long": too_long} if too_long else {})}}


def text(max_length: int, invalid: str = "invalid_field", too_long: str | None = None, **kw: Any) -> Any:
    """A required human text: 1…max characters with at least one that is not a space."""
    return Field(min_length=1, max_length=max_length, pattern=rf"^[^\u0000]*[^{WS}\u0000][^\u0000]*$",
                 json_schema_extra=codes(invalid, too_long), **kw)


class RequestModel(BaseModel):
    """The base of every request body: unknown fields refused, strict JSON types."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LoginIn(RequestModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=200)


class ZoneIn(RequestModel):
    code: Code = Field(description="Stable code, e.g. 'to-3' (lowercase letters, digits, - or _)",
                       json_schema_extra=codes("invalid_zone_code"))
    name: str = text(200, "required", description="Display name, e.g. 'Tổ dân phố 3'")
    kind: Literal["village", "residential_group"] = "residential_group"
    ward: str = Field(default="", max_length=64, description="Ward code; default: the caller's ward (province "
                      "roles give it while there are several wards)")
    languages: list[LanguageCode] | None = Field(
        default=None, max_length=8, description="The languages its residents need, in the order they are played "
        "(ISO 639 codes: 'vi', 'km', 'hnj', 'tyz'…); default ['vi']", json_schema_extra=codes("invalid_language"))


class ZoneLanguagesIn(RequestModel):
    languages: list[LanguageCode] = Field(max_length=8, description="ISO 639 codes in the order they are played; [] or "
                                 "['vi']: Vietnamese only", json_schema_extra=codes("invalid_language"))


class MediaRefIn(RequestModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class VersionIn(RequestModel):
    language: str = Field(min_length=2, max_length=12, pattern=LANGUAGE_PATTERN,
                          description="ISO 639 code of the version ('km', 'hnj'…; not 'vi': the announcement "
                          "itself)", json_schema_extra=codes("invalid_language"))
    text: str = Field(default="", max_length=5000, description="The version's text (what the recording says)")
    media: str | MediaRefIn | None = Field(
        default=None, description="Audio already in the panel, by sha256 (e.g. of an uploaded recording: "
        "POST /announcements/upload); or send the file itself as multipart 'file'")
    approve: bool = Field(default=False, description="Approve it at once (a leader or admin; needs audio)")
    approval: Literal["approved"] | None = Field(default=None, description="Same as approve: true")



class NodeIn(RequestModel):
    node_id: Code = Field(description="[a-z0-9][a-z0-9_-]{0,63}; never '+', '#' or '/'",
                          json_schema_extra=codes("invalid_node_id"))
    name: str = Field(default="", max_length=200)
    zone: ZoneRef | None = Field(default=None, description="Zone code or id")


class AudioOptionsIn(RequestModel):
    """Per-announcement audio overrides; an omitted (null) field keeps the ward default."""

    engine: Literal["auto", "gtts", "espeak", "http"] | None = Field(
        default=None, description="Engine to try first (the ward's order follows as fallback); auto = ward order")
    voice: Literal["north", "central", "south", "north+f3", "central+f3", "south+f3"] | None = None
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    repeat: int | None = Field(default=None, ge=1, le=10, description="Times the bulletin is said in the file")
    gap_ms: int | None = Field(default=None, ge=0, le=60_000, description="Silence between repeats")
    intro_chime: bool | None = None
    outro_chime: bool | None = None


class AnnouncementIn(RequestModel):
    title: str = text(300, "title_required", "title_too_long")
    text: str = text(5000, "text_required", "text_too_long", description="Vietnamese text to be spoken (1–5000 "
                     "characters)")
    approve: bool = Field(default=False, description="Leader/admin only: approve it in the same call "
                          "(otherwise it is a draft to submit for approval)")
    audio: AudioOptionsIn | None = Field(default=None, description="Audio overrides of the ward defaults")
    ward: str | None = Field(default=None, max_length=64, description="Ward code; default: the caller's ward "
                             "(province roles give it while there are several wards)")


class ScheduleIn(RequestModel):
    announcement_id: Id
    zones: list[ZoneRef] = Field(min_length=1, max_length=500, description="Zone codes or ids")
    start_at: str = Field(
        description="ISO 8601. Without an offset it is local time (Asia/Ho_Chi_Minh), "
        "e.g. '2026-11-23T06:00:00'; with 'Z' or '+07:00' it is absolute."
    )
    priority: Literal["normal", "priority", "emergency"] = "normal"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


#: Each command's own arguments (broadcaster/fleet.py COMMAND_MODELS, registered by routes_fleet.py).
COMMAND_ARGS_SCHEMA: dict[str, Any] = {"oneOf": [
    {"properties": {"name": {"enum": ["ping", "resync", "reboot"]}, "args": _ref("NoArgsIn")}},
    {"properties": {"name": {"const": "stop"}, "args": _ref("StopIn")}},
    {"properties": {"name": {"const": "set_volume"}, "args": _ref("SetVolumeIn")}, "required": ["args"]},
    {"properties": {"name": {"const": "play_now"}, "args": _ref("PlayNowIn")}, "required": ["args"]},
]}


class CommandIn(RequestModel):
    model_config = ConfigDict(json_schema_extra=COMMAND_ARGS_SCHEMA)

    name: Literal["ping", "resync", "stop", "set_volume", "reboot", "play_now"] = Field(
        description="The release policy decides who may send which (broadcaster/policy.py)")
    args: dict[str, Any] = Field(default_factory=dict)


class NormalizeIn(RequestModel):
    text: str = Field(max_length=100_000)


class AbbreviationIn(RequestModel):
    abbr: str = Field(pattern=rf"^[^{WS}\u0000]{{1,40}}$", json_schema_extra=codes("invalid_abbreviation"),
                      description="As written, e.g. 'KP' (1–40 characters, no spaces)")
    expansion: str = Field(min_length=1, max_length=300, pattern=rf"^[^0-9\u0000]*[^0-9{WS}\u0000][^0-9\u0000]*$",
                           json_schema_extra=codes("invalid_expansion"),
                           description="How to read it, in words (no digits), e.g. 'khu phố'")
