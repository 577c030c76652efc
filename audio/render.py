"""Announcement rendering end to end: text → normalised text → speech → broadcast chain → verified MP3.

The panel renders when an announcement is saved or approved, never at play time. Each render is
identified by a **cache key**: SHA-256 over the chain version, the normalised text and every
:class:`~audio.processing.ChainSettings` field (engine order, voice, speed, lead-in, loudness target,
true-peak ceiling, bitrate, chimes, repeat, gap, tail). The same key always stands for the same file, so
the panel keeps ``key → media sha256`` and re-saving unchanged text renders nothing::

    result = render_announcement(text, settings, engines, cache=lambda key: db.media_for_key(key))
    if not result.cached:
        info = media_store.put(result.data, "mp3")
        if result.cacheable:  # do not pin a fallback engine's audio to the key
            db.remember(result.key, info.sha256)

``cache`` is a Mapping-like object (anything with ``.get(key)``) or a callable ``key -> sha256 | None``;
it should answer None when the media file is gone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .normalize import normalize
from .processing import CHAIN_VERSION, AudioError, ChainSettings, Loudness, master_audio
from .tts import ENGINE_NAMES, SpeechEngine, SpeechError, default_engines, synthesize_with_fallback
from .upload import MAX_UPLOAD_BYTES, MAX_UPLOAD_DURATION_MS, validate_upload

log = logging.getLogger(__name__)

__all__ = [
    "CacheLookup",
    "RenderResult",
    "announcement_key",
    "cli_tts",
    "engines_from_env",
    "normalize_for_speech",
    "process_recording",
    "recording_key",
    "render_announcement",
]

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class _HasGet(Protocol):
    def get(self, key: str, /) -> Any: ...


#: ``key -> sha256 | None``, or a Mapping-like object with ``.get(key)``.
CacheLookup = Callable[[str], "str | None"] | _HasGet | Mapping[str, str]


@dataclass(frozen=True)
class RenderResult:
    """One rendered (or already cached) broadcast file.

    On a cache hit only ``key``, ``text``, ``sha256`` and ``cached=True`` are set; ``data`` is None.
    ``engine`` is the engine that spoke (``"upload"`` for recordings); ``fell_back`` is True when an
    earlier engine in the order failed first (its errors are in ``warnings``).
    """

    key: str
    sha256: str
    text: str | None = None
    data: bytes | None = None
    duration_ms: int | None = None
    engine: str | None = None
    loudness: Loudness | None = None
    warnings: tuple[str, ...] = ()
    cached: bool = False
    fell_back: bool = False
    content_type: str = "audio/mpeg"

    @property
    def cacheable(self) -> bool:
        """Worth remembering under ``key``: freshly rendered by the preferred engine."""
        return not self.cached and not self.fell_back


# ----------------------------------------------------------------------------------- normalisation


def _normalize(text: str, abbreviations: Mapping[str, str] | None) -> tuple[str, list[str]]:
    clean = " ".join(unicodedata.normalize("NFC", text).split())
    try:
        spoken = normalize(clean, abbreviations=abbreviations)
    except Exception as exc:  # a normaliser bug must not block a bulletin
        log.exception("text normalisation failed; speaking the text as written")
        return clean, [f"text normalisation failed ({type(exc).__name__}: {exc}); the text was spoken as written"]
    return " ".join(unicodedata.normalize("NFC", spoken).split()), []


def normalize_for_speech(text: str, abbreviations: Mapping[str, str] | None = None) -> str:
    """The text as the engine will speak it: :func:`audio.normalize.normalize` (numbers, dates, acronyms
    in words), always NFC with whitespace collapsed."""
    return _normalize(text, abbreviations)[0]


# -------------------------------------------------------------------------------------------- keys


def announcement_key(
    text: str, settings: ChainSettings | None = None, *, abbreviations: Mapping[str, str] | None = None
) -> str:
    """Cache key of an announcement: ``settings.cache_key(normalize_for_speech(text))``."""
    return (settings or ChainSettings()).cache_key(normalize_for_speech(text, abbreviations))


def recording_key(data: bytes, settings: ChainSettings | None = None) -> str:
    """Cache key of an uploaded recording: its bytes and the chain settings (engine, voice, speed aside)."""
    s = settings or ChainSettings()
    fields = s.as_dict()
    for speech_only in ("voice", "speed", "engine_order"):
        fields.pop(speech_only)
    payload = {"chain": CHAIN_VERSION, "upload": hashlib.sha256(data).hexdigest(), "settings": fields}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _lookup(cache: CacheLookup | None, key: str) -> str | None:
    if cache is None:
        return None
    getter = cache.get if hasattr(cache, "get") else cache
    found = getter(key)  # type: ignore[operator]
    if found is None:
        return None
    if not isinstance(found, str) or not _SHA256_RE.fullmatch(found):
        raise ValueError(f"cache lookup must return a sha256 hex string or None, got {found!r}")
    return found


# ----------------------------------------------------------------------------------------- renders


def render_announcement(
    text: str,
    settings: ChainSettings | None = None,
    engines: Sequence[SpeechEngine] | None = None,
    cache: CacheLookup | None = None,
    *,
    abbreviations: Mapping[str, str] | None = None,
    normalize: bool = True,
) -> RenderResult:
    """Normalise ``text``, look its key up in ``cache``, otherwise synthesise and master it.

    ``engines`` defaults to ``default_engines(settings.engine_order)``; pass the configured engines (with
    timeouts, URLs, keys) in the same order as ``settings.engine_order``, which is what the key records.
    Raises SpeechError when the text is empty or every engine fails, AudioError when mastering fails.
    """
    settings = settings or ChainSettings()
    if normalize:
        spoken, notes = _normalize(text, abbreviations)
    else:
        spoken, notes = " ".join(unicodedata.normalize("NFC", text).split()), []
    if not spoken:
        raise SpeechError("nothing to synthesize: the text is empty")
    key = settings.cache_key(spoken)
    hit = _lookup(cache, key)
    if hit:
        return RenderResult(key=key, sha256=hit, text=spoken, cached=True)
    if engines is None:
        engines = default_engines(",".join(settings.engine_order))
    seg, engine, errors = synthesize_with_fallback(spoken, engines, voice=settings.voice, speed=settings.speed)
    mastered = master_audio(seg, settings)
    return RenderResult(
        key=key,
        sha256=hashlib.sha256(mastered.data).hexdigest(),
        text=spoken,
        data=mastered.data,
        duration_ms=mastered.duration_ms,
        engine=engine,
        loudness=mastered.loudness,
        warnings=tuple([*notes, *errors, *mastered.warnings]),
        fell_back=bool(errors),
    )


def process_recording(
    data: bytes,
    filename: str = "",
    settings: ChainSettings | None = None,
    cache: CacheLookup | None = None,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_duration_ms: int = MAX_UPLOAD_DURATION_MS,
) -> RenderResult:
    """Validate an uploaded recording (:func:`audio.upload.validate_upload`) and run the broadcast chain.

    Raises UploadError (a subclass of AudioError) with a Vietnamese message when the file is refused.
    """
    settings = settings or ChainSettings()
    key = recording_key(data, settings)
    hit = _lookup(cache, key)
    if hit:
        return RenderResult(key=key, sha256=hit, cached=True, engine="upload")
    seg = validate_upload(data, filename, max_bytes=max_bytes, max_duration_ms=max_duration_ms)
    mastered = master_audio(seg, settings)
    return RenderResult(
        key=key,
        sha256=hashlib.sha256(mastered.data).hexdigest(),
        data=mastered.data,
        duration_ms=mastered.duration_ms,
        engine="upload",
        loudness=mastered.loudness,
        warnings=mastered.warnings,
    )


# --------------------------------------------------------------------------------------------- CLI


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LOAPHUONG_{name}") or default


def engines_from_env(order: str | None = None) -> list[SpeechEngine]:
    """Engines configured like the panel: ``LOAPHUONG_TTS_ENGINES`` (order), ``LOAPHUONG_GTTS_URL``,
    ``LOAPHUONG_GTTS_TIMEOUT``, ``LOAPHUONG_TTS_HTTP_URL``, ``LOAPHUONG_TTS_HTTP_KEY``,
    ``LOAPHUONG_TTS_HTTP_TIMEOUT``, ``LOAPHUONG_TTS_HTTP_VOICE``."""
    return default_engines(
        order or _env("TTS_ENGINES", "http,gtts,espeak") or "espeak",
        gtts_timeout=float(_env("GTTS_TIMEOUT", "8") or 8),
        gtts_url=_env("GTTS_URL"),
        http_url=_env("TTS_HTTP_URL"),
        http_key=_env("TTS_HTTP_KEY"),
        http_timeout=float(_env("TTS_HTTP_TIMEOUT", "15") or 15),
        http_voice=_env("TTS_HTTP_VOICE"),
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loaphuong tts",
        description="Render Vietnamese text to a broadcast-ready MP3 (normalised, -16 LUFS, true peak ≤ -1 dBTP).",
        epilog="Engines are configured by LOAPHUONG_TTS_ENGINES, LOAPHUONG_GTTS_URL, LOAPHUONG_GTTS_TIMEOUT, "
        "LOAPHUONG_TTS_HTTP_URL, LOAPHUONG_TTS_HTTP_KEY and LOAPHUONG_TTS_HTTP_TIMEOUT.",
    )
    parser.add_argument("text", help='text to speak ("-" reads standard input)')
    parser.add_argument("-o", "--output", required=True, type=Path, help="MP3 file to write")
    parser.add_argument(
        "--engine", default="auto", choices=("auto", *ENGINE_NAMES),
        help="auto: LOAPHUONG_TTS_ENGINES or http,gtts,espeak (http only with a URL), first that works",
    )  # fmt: skip
    parser.add_argument("--voice", help="north, central, south, or an engine's own voice name (espeak: vi, ...)")
    parser.add_argument("--speed", type=float, default=1.0, help="0.5-2.0 (default 1.0)")
    parser.add_argument("--lead-in", type=int, default=600, metavar="MS", help="silence before (default 600)")
    parser.add_argument("--intro-chime", action="store_true", help="chime before the speech")
    parser.add_argument("--outro-chime", action="store_true", help="chime after the speech")
    parser.add_argument("--emergency", action="store_true", help="urgent chime instead of the station chimes")
    parser.add_argument("--repeat", type=int, default=1, help="play the bulletin N times, 1-10 (default 1)")
    parser.add_argument("--gap", type=int, default=3000, metavar="MS", help="between repeats (default 3000)")
    parser.add_argument("--bitrate", default="64k", help="MP3 bitrate (default 64k)")
    parser.add_argument("--target-lufs", type=float, default=-16.0, help="loudness target (default -16)")
    parser.add_argument("--no-normalize", action="store_true", help="speak the text exactly as written")
    parser.add_argument("--print-text", action="store_true", help="print the normalised text")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def cli_tts(argv: Sequence[str] | None = None) -> int:
    """``loaphuong tts "TEXT" -o out.mp3 [--engine auto|gtts|espeak|http] [--voice …] [--speed …]``.

    Returns 0 on success, 1 when speech or audio failed, 2 on bad arguments.
    """
    parser = _build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not logging.getLogger().handlers:  # fallbacks are reported once, as "warning:" lines below
        logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    text = sys.stdin.read() if args.text == "-" else args.text
    engine_arg = args.engine
    order = None if engine_arg == "auto" else engine_arg
    if engine_arg == "http" and not _env("TTS_HTTP_URL"):
        parser.error("--engine http needs LOAPHUONG_TTS_HTTP_URL (and usually LOAPHUONG_TTS_HTTP_KEY)")
    try:
        engines = engines_from_env(order)
        settings = ChainSettings(
            lead_in_ms=args.lead_in, target_lufs=args.target_lufs, bitrate=args.bitrate,
            intro_chime=args.intro_chime, outro_chime=args.outro_chime, emergency=args.emergency,
            repeat=args.repeat, gap_ms=args.gap, voice=args.voice or _env("TTS_VOICE"), speed=args.speed,
            engine_order=tuple(e.name for e in engines),
        )  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    try:
        result = render_announcement(text, settings, engines, normalize=not args.no_normalize)
    except (SpeechError, AudioError) as exc:
        print(f"loaphuong tts: {exc}", file=sys.stderr)
        return 1
    assert result.data is not None
    args.output.write_bytes(result.data)
    loud = result.loudness
    if args.json:
        summary = {
            "output": str(args.output), "engine": result.engine, "duration_ms": result.duration_ms,
            "bytes": len(result.data), "sha256": result.sha256, "key": result.key,
            "integrated_lufs": loud.integrated_lufs if loud else None,
            "true_peak_dbtp": loud.true_peak_dbtp if loud else None, "lra": loud.lra if loud else None,
            "text": result.text, "warnings": list(result.warnings),
        }  # fmt: skip
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        if args.print_text:
            print(result.text)
        level = f", {loud.integrated_lufs:.1f} LUFS, true peak {loud.true_peak_dbtp:.1f} dBTP" if loud else ""
        print(f"{args.output}: {(result.duration_ms or 0) / 1000:.1f} s, engine {result.engine}{level}")
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0
