"""Audio in the panel: the ward's speech and mastering defaults, per-announcement overrides, rendering
announcements (text or an uploaded recording) through ``audio/`` with the render cache, and a media
cleanup that never deletes what anything still references.

Rendering happens when an announcement is saved (or its audio options change), never at play time.
Every render is identified by its cache key (audio.render: normalised text or recording bytes, engine
order, voice, speed and every chain setting); ``render_cache`` maps the key to the media file, so saving
unchanged text again renders nothing.

Engines are configured like the CLI: ``TTS_ENGINES`` order (overridden by the ward's saved order),
``GTTS_TIMEOUT``/``GTTS_URL``, and the cloud provider ``TTS_HTTP_URL``, ``TTS_HTTP_KEY``,
``TTS_HTTP_TIMEOUT``, ``TTS_HTTP_VOICES`` (JSON ``{"north": "banmai", …}``) — Config attributes or
``LOAPHUONG_*`` environment variables. ``http`` is left out of the order while no URL is configured.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, select
from sqlalchemy.exc import IntegrityError

from audio import (
    ENGINE_NAMES,
    AudioError,
    ChainSettings,
    EspeakEngine,
    GTTSEngine,
    HttpEngine,
    SpeechEngine,
    SpeechError,
    UploadError,
    process_recording,
    render_announcement,
)
from audio.render import RenderResult
from audio.upload import MAX_UPLOAD_BYTES, MAX_UPLOAD_DURATION_MS
from broadcaster import approval, limits, policy, tenancy
from broadcaster.airtime import affected_nodes_for_announcement
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Announcement,
    AudioSettings,
    AuditEntry,
    Base,
    Media,
    RenderCache,
    User,
    WireJSON,
)

log = logging.getLogger(__name__)

#: Voices offered in the panel: the three regional accents, and a female variant of each (espeak
#: ``+f3``; the HTTP provider maps these names through TTS_HTTP_VOICES).
VOICES: dict[str, str] = {
    "north": "Northern (Hà Nội)",
    "central": "Central (Huế)",
    "south": "Southern (Sài Gòn)",
    "north+f3": "Northern, female",
    "central+f3": "Central, female",
    "south+f3": "Southern, female",
}
BITRATES = ("32k", "48k", "64k", "96k", "128k")
TARGET_RANGE = (-24.0, -12.0)
SPEED_RANGE = (0.5, 2.0)
OPTION_KEYS = ("engine", "voice", "speed", "repeat", "gap_ms", "intro_chime", "outro_chime")
#: The original of an uploaded recording is kept in the media store under this extension.
RECORDING_EXT = "src"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_LEGACY_VOICES = {"vi": "north", "vi-vn-x-central": "central", "vi-vn-x-south": "south"}


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class WardAudio:
    """The ward's defaults (what a new announcement gets unless it overrides them)."""

    engine_order: tuple[str, ...]
    voice: str | None
    speed: float
    target_lufs: float
    bitrate: str
    lead_in_ms: int
    intro_chime: bool
    outro_chime: bool
    saved: bool = False  # False: nothing saved yet, these come from the configuration

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["engine_order"] = list(self.engine_order)
        return data


def _cfg(service: PanelCore, name: str, default: Any = None) -> Any:
    """A setting of ``Config`` (environment ``LOAPHUONG_<NAME>``); empty counts as unset."""
    value = getattr(service.config, name, None)
    return default if value in (None, "") else value


def _config_defaults(service: PanelCore) -> WardAudio:
    cfg = service.config
    order = tuple(n.strip() for n in str(cfg.TTS_ENGINES).split(",") if n.strip() in ENGINE_NAMES) or ("espeak",)
    voice = _LEGACY_VOICES.get(cfg.TTS_VOICE, cfg.TTS_VOICE) if cfg.TTS_VOICE else None
    bitrate = cfg.MP3_BITRATE if cfg.MP3_BITRATE in BITRATES else "64k"
    return WardAudio(order, voice if voice in VOICES else None, 1.0, -16.0, bitrate,
                     max(0, min(5000, int(cfg.LEAD_IN_MS))), False, False)


def get_ward_audio(service: PanelCore) -> WardAudio:
    with service.db.session() as s:
        row = s.get(AudioSettings, 1)
        if row is None:
            return _config_defaults(service)
        return WardAudio(
            tuple(n for n in row.engine_order.split(",") if n), row.voice, row.speed, row.target_lufs,
            row.bitrate, row.lead_in_ms, row.intro_chime, row.outro_chime, saved=True,
        )  # fmt: skip


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _number(value: Any, kind: type, code: str, field: str, low: float, high: float, what: str) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not low <= number <= high:
        raise ServiceError(code, f"{what} must be between {low:g} and {high:g}", field)
    return number


def _engine_order(value: Any) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else list(value or [])
    order = tuple(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
    if not order or any(n not in ENGINE_NAMES for n in order):
        raise ServiceError("invalid_engine", f"engine order: one or more of {', '.join(ENGINE_NAMES)}",
                           "engine_order")
    return order


def _voice(value: Any, field: str = "voice") -> str | None:
    if value in (None, "", "default"):
        return None
    if value not in VOICES:
        raise ServiceError("invalid_voice", f"voice must be one of {', '.join(VOICES)}", field)
    return str(value)


def set_ward_audio(service: PanelCore, data: dict[str, Any], user: User | None = None) -> WardAudio:
    """Validate and save the ward defaults (a partial ``data`` keeps the other values)."""
    policy.require(service, user, policy.Action.AUDIO_SETTINGS, target="ward:audio")
    tenancy.require_installation_wide(service, user, "audio_settings.set")
    current = get_ward_audio(service)
    known = set(WardAudio.__dataclass_fields__) - {"saved"}
    unknown = set(data) - known
    if unknown:
        raise ServiceError("invalid_field", f"unknown setting(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])
    new = current
    if "engine_order" in data:
        new = replace(new, engine_order=_engine_order(data["engine_order"]))
    if "voice" in data:
        new = replace(new, voice=_voice(data["voice"]))
    if "speed" in data:
        new = replace(new, speed=round(_number(data["speed"], float, "invalid_speed", "speed", *SPEED_RANGE,
                                               "speed"), 2))
    if "target_lufs" in data:
        new = replace(new, target_lufs=round(_number(data["target_lufs"], float, "invalid_target_lufs",
                                                     "target_lufs", *TARGET_RANGE, "loudness target (LUFS)"), 1))
    if "bitrate" in data:
        if data["bitrate"] not in BITRATES:
            raise ServiceError("invalid_bitrate", f"bitrate must be one of {', '.join(BITRATES)}", "bitrate")
        new = replace(new, bitrate=data["bitrate"])
    if "lead_in_ms" in data:
        new = replace(new, lead_in_ms=_number(data["lead_in_ms"], int, "invalid_lead_in", "lead_in_ms", 0, 5000,
                                              "lead-in (ms)"))
    for flag in ("intro_chime", "outro_chime"):
        if flag in data:
            new = replace(new, **{flag: _bool(data[flag])})
    with service.db.session() as s:
        row = s.get(AudioSettings, 1)
        if row is None:
            row = AudioSettings(id=1)
            s.add(row)
        row.engine_order = ",".join(new.engine_order)
        row.voice, row.speed, row.target_lufs = new.voice, new.speed, new.target_lufs
        row.bitrate, row.lead_in_ms = new.bitrate, new.lead_in_ms
        row.intro_chime, row.outro_chime = new.intro_chime, new.outro_chime
        row.updated_by_id = user.id if user else None
        service.audit(s, user, "audio_settings.update", "ward", **new.as_dict())
    return replace(new, saved=True)


def validate_options(data: dict[str, Any] | None) -> dict[str, Any]:
    """Per-announcement overrides, normalised; empty values (and ``engine: auto``) mean the ward default."""
    out: dict[str, Any] = {}
    data = dict(data or {})
    unknown = set(data) - set(OPTION_KEYS)
    if unknown:
        raise ServiceError("invalid_field", f"unknown audio option(s): {', '.join(sorted(unknown))}",
                           sorted(unknown)[0])
    engine = data.get("engine")
    if engine not in (None, "", "auto"):
        if engine not in ENGINE_NAMES:
            raise ServiceError("invalid_engine", f"engine must be auto or one of {', '.join(ENGINE_NAMES)}",
                               "engine")
        out["engine"] = engine
    if (voice := _voice(data.get("voice"))) is not None:
        out["voice"] = voice
    if data.get("speed") not in (None, ""):
        out["speed"] = round(_number(data["speed"], float, "invalid_speed", "speed", *SPEED_RANGE, "speed"), 2)
    if data.get("repeat") not in (None, ""):
        out["repeat"] = _number(data["repeat"], int, "invalid_repeat", "repeat", 1, 10, "repeat")
    if data.get("gap_ms") not in (None, ""):
        out["gap_ms"] = _number(data["gap_ms"], int, "invalid_gap", "gap_ms", 0, 60_000, "gap (ms)")
    for flag in ("intro_chime", "outro_chime"):
        if data.get(flag) not in (None, ""):
            out[flag] = _bool(data[flag])
    return out


def options_from_form(form: Any) -> dict[str, Any]:
    """Audio overrides from a web form (the fields of ``_audio_options.html``); checkboxes are tri-state
    selects (default / on / off) so "as the ward" stays distinguishable from "off"."""
    data = {key: form.get(f"audio_{key}", "") for key in OPTION_KEYS}
    for flag in ("intro_chime", "outro_chime"):
        data[flag] = {"on": True, "off": False}.get(data[flag], "")
    return validate_options(data)


def available_engines(service: PanelCore) -> list[str]:
    """Engine names that can run with this configuration (``http`` needs TTS_HTTP_URL)."""
    return [n for n in ENGINE_NAMES if n != "http" or _cfg(service, "TTS_HTTP_URL")]


def engine_order_for(ward: WardAudio, options: dict[str, Any]) -> tuple[str, ...]:
    """The announcement's engine first (when it chose one), then the ward's order as fallback."""
    chosen = options.get("engine")
    return tuple(dict.fromkeys([chosen, *ward.engine_order] if chosen else ward.engine_order))


def build_engines(service: PanelCore, order: tuple[str, ...]) -> list[SpeechEngine]:
    engines: list[SpeechEngine] = []
    for name in order:
        if name == "gtts":
            engines.append(GTTSEngine(timeout=float(_cfg(service, "GTTS_TIMEOUT", 8)),
                                      base_url=_cfg(service, "GTTS_URL")))
        elif name == "http":
            url = _cfg(service, "TTS_HTTP_URL")
            if not url:
                continue
            voices = _cfg(service, "TTS_HTTP_VOICES")
            if isinstance(voices, str):
                try:
                    voices = json.loads(voices)
                except ValueError:
                    log.warning("TTS_HTTP_VOICES is not JSON; ignored")
                    voices = None
            engines.append(HttpEngine(url, _cfg(service, "TTS_HTTP_KEY"), timeout=float(_cfg(
                service, "TTS_HTTP_TIMEOUT", 15)), voices=voices if isinstance(voices, dict) else None))
        elif name == "espeak":
            engines.append(EspeakEngine())
    return engines


def chain_settings(ward: WardAudio, options: dict[str, Any], engine_order: tuple[str, ...],
                   max_total_ms: int = 15 * 60_000) -> ChainSettings:
    return ChainSettings(
        max_total_ms=max_total_ms,
        lead_in_ms=ward.lead_in_ms,
        target_lufs=ward.target_lufs,
        bitrate=ward.bitrate,
        intro_chime=options.get("intro_chime", ward.intro_chime),
        outro_chime=options.get("outro_chime", ward.outro_chime),
        repeat=options.get("repeat", 1),
        gap_ms=options.get("gap_ms", 3000),
        voice=options.get("voice", ward.voice),
        speed=options.get("speed", ward.speed),
        engine_order=engine_order or ("espeak",),
    )


# ------------------------------------------------------------------------------------------- render


class _Cache:
    """``key → sha256`` over ``render_cache``, only while the media file still exists; remembers the
    engine of a hit (the panel shows which engine produced the audio)."""

    def __init__(self, service: PanelCore) -> None:
        self.service = service
        self.engine: str | None = None

    def __call__(self, key: str) -> str | None:
        with self.service.db.session() as s:
            row = s.get(RenderCache, key)
            if row is None or s.get(Media, row.media_sha256) is None:
                return None
            if not self.service.media.exists(row.media_sha256, "mp3"):
                return None
            self.engine = row.engine
            return row.media_sha256


def _store(service: PanelCore, result: RenderResult) -> str:
    """Keep a fresh render (file, Media row with its loudness, cache entry); return its sha256."""
    if result.cached:
        return result.sha256
    assert result.data is not None
    info = service.media.put(result.data, "mp3")
    loud = result.loudness
    for attempt in (1, 2):  # two decodes of the same file at once (limits.py allows several): the second finds it
        try:
            with service.db.session() as s:
                media = s.get(Media, info.sha256)
                if media is None:
                    media = Media(sha256=info.sha256, size=info.size, duration_ms=result.duration_ms or 0,
                                  content_type=result.content_type)
                    s.add(media)
                if loud is not None:
                    media.integrated_lufs = round(loud.integrated_lufs, 2)
                    media.true_peak_dbtp = round(loud.true_peak_dbtp, 2)
                s.flush()
                if result.cacheable and s.get(RenderCache, result.key) is None:
                    s.add(RenderCache(key=result.key, media_sha256=info.sha256, engine=result.engine or "?"))
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return info.sha256


def render(service: PanelCore, announcement_id: int,
           progress: Callable[[int], None] | None = None) -> Announcement:
    """(Re-)render an announcement's audio with the ward defaults and its own overrides.

    Text is normalised with the ward's abbreviations and stored as ``normalized_text`` (what leaders
    approve). A cache hit points the announcement at the existing media and runs no engine and no
    ffmpeg. A failure keeps the announcement (``render_error`` says why; status draft). ``progress`` is told
    each stage's percentage (a background render shows it: PanelCore.render_in_background).
    """
    step = progress or (lambda _percent: None)
    step(10)
    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        if ann is None:
            raise ServiceError("not_found", "no such announcement", status=404)
        text, source = ann.text, ann.source or "tts"
        options, recording = dict(ann.audio_options or {}), ann.recording_sha256
    ward = get_ward_audio(service)
    cache = _Cache(service)
    started = time.perf_counter()
    try:
        if source == "upload":
            if not recording or not service.media.exists(recording, RECORDING_EXT):
                raise AudioError("the original recording is no longer stored; upload it again")
            settings = chain_settings(ward, options, ("upload",), service.config.MAX_BULLETIN_MS)
            data = service.media.path(recording, RECORDING_EXT).read_bytes()
            with limits.decode_slots(service).slot():  # a re-master decodes the recording again (limits.py)
                result = process_recording(data, "", settings, cache, max_bytes=max(len(data), 1),
                                           max_duration_ms=MAX_UPLOAD_DURATION_MS)
        else:
            spoken = service.normalize_text(text)
            with service.db.session() as s:
                row = s.get(Announcement, announcement_id)
                assert row is not None
                row.normalized_text = spoken
            step(25)
            engines = build_engines(service, engine_order_for(ward, options))
            if not engines:
                raise SpeechError("no speech engine available (is TTS_HTTP_URL configured?)")
            settings = chain_settings(ward, options, tuple(e.name for e in engines), service.config.MAX_BULLETIN_MS)
            step(40)  # speech and mastering: the long stage
            result = render_announcement(spoken, settings, engines, cache, normalize=False)
    except limits.Busy:
        raise  # no slot to decode the recording now: refused (503), the announcement is unchanged
    except (SpeechError, AudioError, OSError, ValueError) as exc:
        log.warning("audio rendering failed for announcement %s: %s", announcement_id, exc)
        with service.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            assert ann is not None
            ann.render_error = str(exc)
            ann.status = "draft"
        return service.get_announcement(announcement_id)  # type: ignore[return-value]
    step(85)
    sha = _store(service, result)
    step(95)
    engine = (cache.engine if result.cached else result.engine) or source
    log.info("announcement %s: %s audio %s by %s in %.2f s%s", announcement_id,
             "cached" if result.cached else "rendered", sha[:12], engine, time.perf_counter() - started,
             f" (after: {'; '.join(result.warnings)})" if result.fell_back else "")
    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        assert ann is not None
        changed = ann.media_sha256 != sha
        ann.media_sha256 = sha
        ann.engine = engine
        ann.render_key = result.key
        ann.render_error = None
        ann.status = "ready"
        if ann.approved_media_sha256 is not None and ann.approved_media_sha256 != sha:
            approval.void(service, s, ann, None, "audio re-rendered differently")  # R5: other audio, no approval
    if changed:
        _republish(service, announcement_id)
    return service.get_announcement(announcement_id)  # type: ignore[return-value]


def _republish(service: PanelCore, announcement_id: int) -> None:
    """New audio for a scheduled announcement: the nodes that play it get a plan naming the new file now
    (not at the next rollover). Publishing is idempotent: unchanged plans are not sent again."""
    with service.db.session() as s:
        affected = affected_nodes_for_announcement(s, announcement_id)
    if affected:
        service.publish_plans(affected)


def set_options(service: PanelCore, announcement_id: int, data: dict[str, Any] | None,
                user: User | None = None) -> Announcement:
    """Replace an announcement's audio overrides and render again (nothing runs if the key is cached)."""
    policy.require(service, user, policy.Action.ANNOUNCEMENT_WRITE, target=f"announcement:{announcement_id}")
    options = validate_options(data)
    with service.db.session() as s:
        ann = s.get(Announcement, announcement_id)
        if ann is None:
            raise ServiceError("not_found", "no such announcement", status=404)
        tenancy.check_user(user, ann.ward_id, "announcement")
        changed = (ann.audio_options or {}) != options
        ann.audio_options = options or None
        service.audit(s, user, "announcement.audio_options", str(announcement_id), ward_id=ann.ward_id, **options)
        if changed:  # R5: the approval covered the old voice / options
            approval.void(service, s, ann, user, "audio options changed")
    rendered = service.render_announcement(announcement_id)
    if changed:
        _republish(service, announcement_id)  # out of the plans now, even when the audio happens to be the same
    return rendered


# ------------------------------------------------------------------------------------------ uploads


class UploadRefused(ServiceError):
    """A recording was refused; carries the Vietnamese and English messages of the UploadError."""

    def __init__(self, exc: UploadError) -> None:
        status = 413 if exc.code == "too_large" else 400
        super().__init__(f"upload_{exc.code}", exc.message_en, "file", status)
        self.message_vi = exc.message_vi
        self.message_en = exc.message_en


def _validate_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise ServiceError("title_required", "title is required", "title")
    if len(title) > 300:
        raise ServiceError("title_too_long", "title is longer than 300 characters", "title")
    return title


def master_recording(service: PanelCore, data: bytes, filename: str = "",
                     options: dict[str, Any] | None = None) -> tuple[str, str, str | None]:
    """A recording through the upload chain (decode, loudness, limiter, MP3), kept in the media store:
    ``(sha256 of the mastered audio, sha256 of the original as received, render key)``. A refused file raises
    :class:`UploadRefused` and stores nothing."""
    ward = get_ward_audio(service)
    settings = chain_settings(ward, options or {}, ("upload",), service.config.MAX_BULLETIN_MS)
    cache = _Cache(service)
    max_bytes = int(_cfg(service, "MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES))
    try:
        # At most MAX_CONCURRENT_DECODES at once, web and API alike; else a short wait, then 503 busy.
        with limits.decode_slots(service).slot():
            result = process_recording(data, filename, settings, cache, max_bytes=max_bytes, max_duration_ms=int(
                _cfg(service, "MAX_UPLOAD_DURATION_MS", MAX_UPLOAD_DURATION_MS)))
    except UploadError as exc:
        raise UploadRefused(exc) from exc
    except AudioError as exc:  # decodes, but the chain cannot use it (e.g. too quiet to measure)
        raise UploadRefused(UploadError(
            "unusable", "Không xử lý được tệp âm thanh này; hãy thu âm lại rõ hơn",
            f"The recording cannot be processed: {exc}")) from exc
    original = service.media.put(data, RECORDING_EXT)
    return _store(service, result), original.sha256, result.key


def create_recording(
    service: PanelCore,
    title: str,
    data: bytes,
    filename: str = "",
    user: User | None = None,
    *,
    text: str = "",
    options: dict[str, Any] | None = None,
) -> Announcement:
    """An announcement from an uploaded recording (mp3, wav, m4a, ogg, webm…), through the same chain.

    The file is validated by decoding it; a refused file raises :class:`UploadRefused` and nothing at
    all is stored (no announcement, no media). The original is kept as ``<sha256>.src`` so the audio can
    be re-mastered when options change.
    """
    title = _validate_title(title)
    text = (text or "").strip()
    if len(text) > service.config.MAX_TEXT_CHARS:
        raise ServiceError("text_too_long", "the description is too long", "text")
    clean = validate_options(options)
    for speech_only in ("engine", "voice", "speed"):
        clean.pop(speech_only, None)
    sha, original_sha, render_key = master_recording(service, data, filename, clean)
    with service.db.session() as s:
        ann = Announcement(
            title=title, text=text, source="upload", status="ready", engine="upload", media_sha256=sha,
            audio_options=clean or None, render_key=render_key, recording_sha256=original_sha,
            created_by_id=user.id if user else None, ward_id=tenancy.ward_for_new(s, user).id,
        )  # fmt: skip
        s.add(ann)
        s.flush()
        service.audit(s, user, "announcement.upload", str(ann.id), bytes=len(data), media=sha)
        ann_id = ann.id
    return service.get_announcement(ann_id)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ cleanup


def _hashes(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        if _SHA_RE.match(value):
            found.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _hashes(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _hashes(item, found)


def referenced_media(service: PanelCore) -> set[str]:
    """Every sha256 something still refers to: any column with a foreign key to ``media`` (announcements,
    alerts, canned media…, but not the cache), every recording original, and any sha256 inside any JSON
    column — the signed plans held for nodes (``Node.plan_payload``), programmes, commands. The audit log
    records history, not use, and is not scanned."""
    found: set[str] = set()
    with service.db.session() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in (RenderCache.__tablename__, AuditEntry.__tablename__):
                continue
            for column in table.columns:
                points_at_media = any(fk.column.table.name == Media.__tablename__ for fk in column.foreign_keys)
                if points_at_media or column.name == "recording_sha256":
                    found.update(v for v in s.scalars(select(column).where(column.is_not(None))) if v)
                elif isinstance(column.type, JSON | WireJSON):
                    for value in s.scalars(select(column).where(column.is_not(None))):
                        _hashes(value, found)
    return found


@dataclass
class CleanupReport:
    deleted: list[str]
    kept_referenced: int
    kept_recent: int
    bytes_freed: int
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cleanup_media(service: PanelCore, *, min_age: timedelta = timedelta(days=1), dry_run: bool = False,
                  user: User | None = None, now: datetime | None = None) -> CleanupReport:
    """Delete media files (and their rows and cache entries) that nothing references.

    Never deleted: anything :func:`referenced_media` finds (an announcement's audio or recording, an
    alert's, canned audio, any file named in a plan held for a node), and anything younger than
    ``min_age`` (a render that has stored its file but not yet its reference).
    """
    now = now or datetime.now(UTC)
    referenced = referenced_media(service)
    cutoff = (now - min_age).timestamp()
    deleted: list[str] = []
    freed = kept_ref = kept_recent = 0
    for path in sorted(service.media.root.iterdir()):
        name, _, ext = path.name.partition(".")
        if not path.is_file() or not _SHA_RE.match(name):
            continue
        if name in referenced:
            kept_ref += 1
            continue
        if path.stat().st_mtime > cutoff:
            kept_recent += 1
            continue
        deleted.append(path.name)
        freed += path.stat().st_size
        if not dry_run:
            path.unlink(missing_ok=True)
            if ext == "mp3":
                with service.db.session() as s:
                    for row in s.scalars(select(RenderCache).where(RenderCache.media_sha256 == name)):
                        s.delete(row)
                    s.flush()
                    media = s.get(Media, name)
                    if media is not None:
                        s.delete(media)
    if deleted and not dry_run:
        with service.db.session() as s:
            service.audit(s, user, "media.cleanup", "", files=deleted, bytes=freed)
    return CleanupReport(deleted, kept_ref, kept_recent, freed, dry_run)


# ------------------------------------------------------------------------------------------- output


def announcement_audio_json(ann: Announcement) -> dict[str, Any]:
    """The audio part of an announcement for the API: source, overrides, measured loudness."""
    media = ann.media
    return {
        "source": ann.source or "tts",
        "options": ann.audio_options or {},
        "render_key": ann.render_key,
        "integrated_lufs": media.integrated_lufs if media else None,
        "true_peak_dbtp": media.true_peak_dbtp if media else None,
    }
