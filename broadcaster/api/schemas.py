"""Request bodies of the REST API (pydantic; the OpenAPI document is generated from them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str
    password: str


class ZoneIn(_In):
    code: str = Field(description="Stable code, e.g. 'to-3' (lowercase letters, digits, - or _)")
    name: str = Field(description="Display name, e.g. 'Tổ dân phố 3'")
    kind: Literal["village", "residential_group"] = "residential_group"
    ward: str = Field(default="", description="Ward code; default: the caller's ward (province roles give it "
                      "while there are several wards)")


class NodeIn(_In):
    node_id: str = Field(description="[a-z0-9][a-z0-9_-]{0,63}; never '+', '#' or '/'")
    name: str = ""
    zone: str | int | None = Field(default=None, description="Zone code or id")


class AudioOptionsIn(_In):
    """Per-announcement audio overrides; an omitted (null) field keeps the ward default."""

    engine: Literal["auto", "gtts", "espeak", "http"] | None = Field(
        default=None, description="Engine to try first (the ward's order follows as fallback); auto = ward order")
    voice: Literal["north", "central", "south", "north+f3", "central+f3", "south+f3"] | None = None
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    repeat: int | None = Field(default=None, ge=1, le=10, description="Times the bulletin is said in the file")
    gap_ms: int | None = Field(default=None, ge=0, le=60_000, description="Silence between repeats")
    intro_chime: bool | None = None
    outro_chime: bool | None = None


class AnnouncementIn(_In):
    title: str = Field(max_length=300)
    text: str = Field(description="Vietnamese text to be spoken (1–5000 characters by default)")
    approve: bool = Field(default=False, description="Leader/admin only: approve it in the same call "
                          "(otherwise it is a draft to submit for approval)")
    audio: AudioOptionsIn | None = Field(default=None, description="Audio overrides of the ward defaults")
    ward: str | None = Field(default=None, description="Ward code; default: the caller's ward (province roles "
                             "give it while there are several wards)")


class ScheduleIn(_In):
    announcement_id: int
    zones: list[str | int] = Field(min_length=1, description="Zone codes or ids")
    start_at: str = Field(
        description="ISO 8601. Without an offset it is local time (Asia/Ho_Chi_Minh), "
        "e.g. '2026-11-23T06:00:00'; with 'Z' or '+07:00' it is absolute."
    )
    priority: Literal["normal", "priority", "emergency"] = "normal"


class CommandIn(_In):
    name: Literal["ping", "resync", "stop", "set_volume", "reboot", "play_now"] = Field(
        description="The release policy decides who may send which (broadcaster/policy.py)")
    args: dict[str, Any] = Field(default_factory=dict)


class NormalizeIn(_In):
    text: str = Field(max_length=100_000)


class AbbreviationIn(_In):
    abbr: str = Field(description="As written, e.g. 'KP'")
    expansion: str = Field(description="How to read it, in words, e.g. 'khu phố'")
