"""Text-to-speech engines behind one interface: a Vietnamese cloud provider over HTTP, Google (gTTS) and
the offline espeak-ng fallback.

Every engine has a ``name`` (what the panel shows) and ``synthesize(text, *, voice=None, speed=1.0)``
returning a pydub AudioSegment or raising :class:`SpeechError`. Online engines always run with a
timeout. Speech is rendered when content is saved or approved, never at play time, so a slow or failing
engine costs the officer a retry, not a silent loudspeaker.

Voices: ``"north"``, ``"central"`` and ``"south"`` name the regional accent for every engine (espeak maps
them to ``vi``, ``vi-vn-x-central`` and ``vi-vn-x-south``; the HTTP engine maps them through its
``voices`` table); an engine-specific voice name is passed through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import io
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import espeakng_loader
import requests
from gtts import gTTS
from gtts.tts import gTTSError

from .codec import AudioError, AudioSegment, change_tempo, decode

log = logging.getLogger(__name__)

__all__ = [
    "ENGINE_NAMES",
    "ESPEAK_VOICES",
    "REGION_VOICES",
    "EspeakEngine",
    "GTTSEngine",
    "HttpEngine",
    "SpeechEngine",
    "SpeechError",
    "default_engines",
    "synthesize_with_fallback",
]

#: Vietnamese espeak-ng voices bundled by espeakng-loader, with their regional accent.
ESPEAK_VOICES: dict[str, str] = {
    "vi": "Northern (Hanoi)",
    "vi-vn-x-central": "Central (Hue)",
    "vi-vn-x-south": "Southern (Saigon)",
}
#: Accent names understood by every engine, and the espeak voice for each.
REGION_VOICES: dict[str, str] = {"north": "vi", "central": "vi-vn-x-central", "south": "vi-vn-x-south"}
MIN_SPEED, MAX_SPEED = 0.5, 2.0


class SpeechError(Exception):
    """Speech synthesis failed; ``str(exc)`` says why, ``engine`` names the engine (None: all of them)."""

    def __init__(self, message: str, engine: str | None = None, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.engine = engine
        self.errors = list(errors)


@runtime_checkable
class SpeechEngine(Protocol):
    name: str

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment: ...


def _clean_text(text: str) -> str:
    # Vietnamese typed on some keyboards/browsers arrives decomposed (NFD); engines expect NFC.
    return unicodedata.normalize("NFC", text).strip()


def _check_speed(speed: float) -> None:
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")


# --------------------------------------------------------------------------------------------- gTTS

_BATCHEXECUTE_PATH = "_/TranslateWebserverUi/data/batchexecute"


class _RoutedGTTS(gTTS):
    """gTTS whose requests go to ``base_url`` (a proxy or test server) instead of translate.google.com.

    gTTS only lets the caller choose the Google TLD, so the prepared requests are re-pointed. This relies
    on gTTS's ``_prepare_requests`` (present since gTTS 2.3).
    """

    def __init__(self, text: str, *, base_url: str | None, **kwargs: Any) -> None:
        self._base_url = base_url
        super().__init__(text, **kwargs)

    def _prepare_requests(self) -> list[requests.PreparedRequest]:
        prepared = super()._prepare_requests()
        if self._base_url:
            for request in prepared:
                request.prepare_url(f"{self._base_url.rstrip('/')}/{_BATCHEXECUTE_PATH}", None)
        return prepared


class GTTSEngine:
    """Google Translate's TTS through gTTS. Needs internet; may answer 429 or change without notice.

    ``timeout`` applies to connecting and to every read of every request (gTTS sends one request per
    ~100 characters); gTTS's own default is to wait forever. Google has a single Vietnamese voice, so
    ``voice`` is ignored. ``speed`` below 0.85 uses gTTS's slow mode, otherwise the tempo is changed with
    ffmpeg.

    HTTP 429 (and 503) is retried up to ``retries`` times with exponential back-off (``backoff``,
    ``2 × backoff``, …; a ``Retry-After`` header is honoured when shorter than the remaining budget). A
    retry starts only while ``elapsed + delay + timeout`` stays within ``max_total`` (default
    ``3 × timeout``), so a rate-limited Google never keeps the officer waiting much longer than that.
    """

    name = "gtts"
    RETRY_STATUSES = (429, 503)

    def __init__(
        self,
        timeout: float = 10.0,
        lang: str = "vi",
        base_url: str | None = None,
        *,
        retries: int = 2,
        backoff: float = 1.0,
        max_total: float | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("gTTS timeout must be positive")
        if not 0 <= retries <= 5 or backoff < 0:
            raise ValueError("retries must be 0-5 and backoff not negative")
        self.timeout = timeout
        self.lang = lang
        self.base_url = base_url
        self.retries = retries
        self.backoff = backoff
        self.max_total = max_total if max_total is not None else 3 * timeout
        self.attempts = 0  # requests made by the last synthesize() call (diagnostics, tests)

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment:
        _check_speed(speed)
        text = _clean_text(text)
        if not text:
            raise SpeechError("gtts: no text to speak", engine=self.name)
        slow = speed < 0.85
        started = time.monotonic()
        self.attempts = 0
        while True:
            self.attempts += 1
            try:
                data = self._fetch(text, slow)
                break
            except Exception as exc:  # gTTSError, requests timeouts raised mid-body, AssertionError, ...
                status = _gtts_status(exc)
                delay = self._retry_delay(exc, status, started)
                if delay is None:
                    message = f"gtts: {_describe_gtts_failure(exc, self.timeout)}"
                    if self.attempts > 1:
                        message += f" (after {self.attempts} attempts)"
                    raise SpeechError(message, engine=self.name) from exc
                log.info("gtts: HTTP %s, retrying in %.2f s", status, delay)
                time.sleep(delay)
        if not data:
            raise SpeechError("gtts: the TTS service returned no audio", engine=self.name)
        try:
            seg = decode(data)
        except AudioError as exc:
            message = f"gtts: the TTS service returned unusable audio ({exc})"
            raise SpeechError(message, engine=self.name) from exc
        if not slow and abs(speed - 1.0) > 0.02:
            seg = change_tempo(seg, speed)
        return seg

    def _fetch(self, text: str, slow: bool) -> bytes:
        buf = io.BytesIO()
        tts = _RoutedGTTS(
            text, base_url=self.base_url, lang=self.lang, slow=slow, lang_check=False, timeout=self.timeout
        )
        for chunk in tts.stream():
            buf.write(chunk)
        return buf.getvalue()

    def _retry_delay(self, exc: BaseException, status: int | None, started: float) -> float | None:
        if status not in self.RETRY_STATUSES or self.attempts > self.retries:
            return None
        delay = self.backoff * 2 ** (self.attempts - 1)
        retry_after = _retry_after(exc)
        elapsed = time.monotonic() - started
        if retry_after is not None and elapsed + retry_after + self.timeout <= self.max_total:
            delay = max(delay, retry_after)
        if elapsed + delay + self.timeout > self.max_total:
            return None
        return delay


def _gtts_status(exc: BaseException) -> int | None:
    return getattr(getattr(exc, "rsp", None), "status_code", None)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "rsp", None), "headers", None) or {}
    try:
        value = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _describe_gtts_failure(exc: BaseException, timeout: float) -> str:
    """Name the real cause: gTTS turns every network error into a vague "Failed to connect"."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for err in chain:
        if isinstance(err, requests.Timeout):
            return f"the TTS service did not answer within {timeout:g} s ({type(err).__name__})"
        if isinstance(err, requests.ConnectionError) and "timed out" in str(err).lower():
            return f"the TTS service did not answer within {timeout:g} s"
    for err in chain:
        if isinstance(err, requests.ConnectionError):
            return f"cannot reach the TTS service ({type(err).__name__}: {_short(err)})"
    status = getattr(getattr(exc, "rsp", None), "status_code", None)  # gTTSError keeps the response
    if status == 429:
        return "Google rate-limited this server (HTTP 429 Too Many Requests); try again later"
    text = _short(exc)
    if isinstance(exc, gTTSError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------ espeak

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02  # synthesis returns when done; samples come through the callback
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # without it libespeak-ng calls exit() if its data is missing
_ESPEAK_RATE = 1
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_EE_OK = 0

# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events): both pointers are taken as plain
# addresses (c_void_p arrives as an int, or None for NULL) and the samples copied with ctypes.string_at.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    """The process-wide libespeak-ng instance. Every use must hold ``_ESPEAK_LOCK``."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 500, data_path, _ESPEAK_INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise SpeechError(f"espeak: libespeak-ng failed to initialise (code {rate})", engine="espeak")
        self.lib = lib
        self.sample_rate = rate
        self._chunks: list[bytes] = []
        self._callback = _SynthCallback(self._on_samples)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_samples(self, wav: int | None, count: int, _events: int | None) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = continue synthesis

    def synth(self, text: str, voice: str, rate: int) -> bytes:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise SpeechError(f"espeak: unknown voice {voice!r}", engine="espeak")
        self.lib.espeak_SetParameter(_ESPEAK_RATE, rate, 0)
        payload = text.encode("utf-8")
        self._chunks = []
        try:
            code = self.lib.espeak_Synth(
                payload, len(payload) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            pcm = b"".join(self._chunks)
        finally:
            self._chunks = []
        if code != _EE_OK:
            raise SpeechError(f"espeak: synthesis failed (espeak_Synth returned {code})", engine="espeak")
        return pcm


_ESPEAK_LOCK = threading.Lock()  # libespeak-ng keeps voice, rate and callback in global state
_espeak: _Espeak | None = None


def _espeak_instance() -> _Espeak:
    global _espeak
    if _espeak is None:
        try:
            _espeak = _Espeak()
        except SpeechError:
            raise
        except Exception as exc:  # OSError from dlopen, RuntimeError from the loader (no voice data)
            raise SpeechError(f"espeak: libespeak-ng is unavailable ({exc})", engine="espeak") from exc
    return _espeak


_ESPEAK_VARIANT_RE = re.compile(r"(f[1-5]|m[1-7])")


def espeak_voice(voice: str) -> str:
    """The espeak-ng voice for ``voice``: an accent name or a Vietnamese espeak voice, optionally with a
    ``+f1``…``+f5`` (female) or ``+m1``…``+m7`` (male) variant, e.g. ``south+f2``.

    Anything else raises SpeechError: libespeak-ng would otherwise accept "en" or a variant name such as
    "klingon" and read the Vietnamese bulletin with the wrong language's rules.
    """
    base, _, variant = voice.strip().partition("+")
    base = REGION_VOICES.get(base, base)
    if base not in ESPEAK_VOICES or (variant and not _ESPEAK_VARIANT_RE.fullmatch(variant)):
        choices = ", ".join([*REGION_VOICES, *ESPEAK_VOICES])
        raise SpeechError(f"espeak: unknown voice {voice!r} (choose {choices}, optionally +f1-f5/+m1-m7)",
                          engine="espeak")
    return f"{base}+{variant}" if variant else base


class EspeakEngine:
    """Offline espeak-ng through ctypes. Robotic but intelligible, fast, always available.

    ``speed`` 1.0 is 160 words per minute, a little under espeak's 175 default: street echo smears
    fast speech from loudspeakers. Voices: ``vi`` (north), ``vi-vn-x-central``, ``vi-vn-x-south`` or the
    accent names ``north``/``central``/``south``, each optionally with a variant (see :func:`espeak_voice`).
    """

    name = "espeak"
    BASE_RATE_WPM = 160

    def __init__(self, voice: str = "vi") -> None:
        self.voice = voice  # checked when speaking, so a bad ward setting is reported, not a crash

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment:
        _check_speed(speed)
        text = _clean_text(text)
        if not text:
            raise SpeechError("espeak: no text to speak", engine=self.name)
        rate = max(80, min(450, round(self.BASE_RATE_WPM * speed)))
        chosen = espeak_voice(voice or self.voice)
        with _ESPEAK_LOCK:
            engine = _espeak_instance()
            pcm = engine.synth(text, chosen, rate)
            sample_rate = engine.sample_rate
        if not pcm:
            raise SpeechError("espeak: synthesis produced no audio", engine=self.name)
        return AudioSegment(data=pcm, sample_width=2, frame_rate=sample_rate, channels=1)


# -------------------------------------------------------------------------------------------- HTTP

_AUDIO_MAGIC = (b"ID3", b"RIFF", b"OggS", b"fLaC", b"\x1aE\xdf\xa3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
_URL_KEYS = ("audio_url", "async", "url")
_BASE64_KEYS = ("audio_base64", "audioContent")


class _HttpFailure(Exception):
    pass


class HttpEngine:
    """A Vietnamese cloud TTS provider (FPT.AI / Viettel AI style) behind a small HTTP contract.

    Request::

        POST <url>
        Authorization: Bearer <key>
        Content-Type: application/json
        {"text": "<NFC text>", "voice": "<voice or null>", "speed": 1.0}

    ``speed`` is a multiplier (1.0 normal, 0.5-2.0); ``voice`` is the per-call voice or the engine's, with
    the accent names ``north``/``central``/``south`` translated through ``voices`` (e.g.
    ``{"north": "banmai", "south": "lannhi"}``) when given.

    Accepted answers (HTTP 2xx), the three styles such providers use:

    1. the audio itself: ``Content-Type: audio/*`` (MP3, WAV, Ogg ...) or ``application/octet-stream``;
    2. JSON ``{"audio_url": "https://..."}`` (``"async"`` as FPT.AI names it, or ``"url"``): the file is
       fetched with GET; 404/202 while the provider is still rendering are polled every 0.5 s until the
       deadline. The bearer token is sent only when the link is on the same host as ``url``;
    3. JSON ``{"audio_base64": "..."}`` (or ``"audioContent"``).

    JSON with a non-zero ``error`` (or ``"status": "error"``) and a ``message`` is a failure; so is any
    other status. ``timeout`` bounds the whole synthesis - connecting, waiting, downloading and polling -
    and every failure raises :class:`SpeechError`. Providers whose API differs (FPT.AI takes raw text and
    an ``api-key`` header, Viettel a ``token`` field) go behind a small proxy that speaks this contract.
    """

    MAX_BYTES = 50 * 1024 * 1024
    POLL_INTERVAL_S = 0.5

    def __init__(
        self,
        url: str,
        key: str | None = None,
        timeout: float = 15.0,
        voice: str | None = None,
        *,
        voices: Mapping[str, str] | None = None,
        name: str = "http",
    ) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError("the HTTP speech engine needs an http:// or https:// URL")
        if timeout <= 0:
            raise ValueError("HTTP speech timeout must be positive")
        self.url = url
        self.key = key
        self.timeout = timeout
        self.voices = dict(voices or {})
        self.voice = voice
        self.name = name

    def _voice(self, voice: str | None) -> str | None:
        chosen = voice or self.voice
        return self.voices.get(chosen, chosen) if chosen else None

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment:
        _check_speed(speed)
        text = _clean_text(text)
        if not text:
            raise SpeechError(f"{self.name}: no text to speak", engine=self.name)
        deadline = time.monotonic() + self.timeout
        body = {"text": text, "voice": self._voice(voice), "speed": round(float(speed), 3)}
        try:
            data = self._synthesize(body, deadline)
        except _HttpFailure as exc:
            raise SpeechError(f"{self.name}: {exc}", engine=self.name) from exc
        try:
            return decode(data)
        except AudioError as exc:
            message = f"{self.name}: the TTS service returned unusable audio ({exc})"
            raise SpeechError(message, engine=self.name) from exc

    def _synthesize(self, body: dict[str, Any], deadline: float) -> bytes:
        headers = {"Accept": "audio/mpeg, audio/*, application/json"}
        status, ctype, data = self._request("POST", self.url, deadline, json=body, headers=headers, auth=True)
        if not 200 <= status < 300:
            raise _HttpFailure(f"the TTS service answered HTTP {status}{_error_detail(data)}")
        if _is_audio(ctype, data):
            return _non_empty(data)
        payload = _json(data)
        if payload is None:
            raise _HttpFailure(f"the TTS service answered {ctype or 'no content type'}, neither audio nor JSON")
        failure = _json_error(payload)
        if failure:
            raise _HttpFailure(f"the TTS service reported an error: {failure}")
        for key in _BASE64_KEYS:
            if isinstance(payload.get(key), str):
                try:
                    return _non_empty(base64.b64decode(payload[key], validate=True))
                except (binascii.Error, ValueError) as exc:
                    raise _HttpFailure(f"the TTS service sent invalid base64 in {key!r}") from exc
        for key in _URL_KEYS:
            if isinstance(payload.get(key), str) and payload[key].startswith(("http://", "https://")):
                return self._download(payload[key], deadline)
        raise _HttpFailure(f"the TTS service's JSON has no audio ({', '.join(sorted(payload)) or 'empty'})")

    def _download(self, url: str, deadline: float) -> bytes:
        same_host = requests.utils.urlparse(url).netloc == requests.utils.urlparse(self.url).netloc
        while True:
            status, ctype, data = self._request("GET", url, deadline, auth=same_host)
            if 200 <= status < 300 and status != 202:
                if not (_is_audio(ctype, data) or _json(data) is None):
                    raise _HttpFailure(f"the audio link returned {ctype}, not audio")
                return _non_empty(data)
            if status not in (202, 404, 425):
                raise _HttpFailure(f"the audio link answered HTTP {status}{_error_detail(data)}")
            if time.monotonic() + self.POLL_INTERVAL_S >= deadline:
                raise _HttpFailure(f"the audio was not ready within {self.timeout:g} s")
            time.sleep(self.POLL_INTERVAL_S)

    def _request(
        self,
        method: str,
        url: str,
        deadline: float,
        *,
        auth: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, str, bytes]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _HttpFailure(f"the TTS service did not answer within {self.timeout:g} s")
        headers = dict(headers or {})
        if auth and self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        try:
            with requests.request(
                method, url, headers=headers, timeout=(remaining, remaining), stream=True, **kwargs
            ) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > self.MAX_BYTES:
                        raise _HttpFailure(f"the TTS service sent more than {self.MAX_BYTES // 2**20} MB")
                    if time.monotonic() > deadline:
                        raise _HttpFailure(f"the TTS service did not finish within {self.timeout:g} s")
                    chunks.append(chunk)
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                return resp.status_code, ctype, b"".join(chunks)
        except requests.Timeout as exc:
            raise _HttpFailure(f"the TTS service did not answer within {self.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                raise _HttpFailure(f"the TTS service did not answer within {self.timeout:g} s") from exc
            raise _HttpFailure(f"cannot reach the TTS service ({type(exc).__name__}: {_short(exc)})") from exc
        except requests.RequestException as exc:
            raise _HttpFailure(f"request failed ({type(exc).__name__}: {_short(exc)})") from exc


def _is_audio(ctype: str, data: bytes) -> bool:
    if ctype.startswith("audio/") or ctype in ("application/octet-stream", "video/webm", "application/ogg"):
        return True
    return not ctype and data.startswith(_AUDIO_MAGIC)


def _non_empty(data: bytes) -> bytes:
    if not data:
        raise _HttpFailure("the TTS service returned no audio")
    return data


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _json_error(payload: dict[str, Any]) -> str | None:
    error = payload.get("error")
    failed = (error not in (None, 0, "0", False, "", "success")) or str(payload.get("status", "")).lower() in (
        "error", "failed", "failure",
    )  # fmt: skip
    if not failed:
        return None
    message = payload.get("message") or payload.get("msg") or error or payload.get("status")
    return _short(Exception(str(message)), 200)


def _error_detail(data: bytes) -> str:
    payload = _json(data)
    if payload is not None:
        message = payload.get("message") or payload.get("error") or payload.get("msg")
        if message:
            return f": {_short(Exception(str(message)), 200)}"
    text = " ".join(data[:400].decode("utf-8", "replace").split())
    return f": {text[:200]}" if text and text.isprintable() else ""


# --------------------------------------------------------------------------------------- fallback

#: Engine names accepted by :func:`default_engines`, as the panel shows them.
ENGINE_NAMES = ("gtts", "espeak", "http")
_ENGINE_NAMES = ENGINE_NAMES


def default_engines(
    order: str = "gtts,espeak",
    gtts_timeout: float = 10.0,
    gtts_url: str | None = None,
    http_url: str | None = None,
    http_key: str | None = None,
    *,
    http_timeout: float = 15.0,
    http_voice: str | None = None,
    http_voices: Mapping[str, str] | None = None,
) -> list[SpeechEngine]:
    """Build engines from a comma-separated preference list such as ``"http,gtts,espeak"`` or ``"espeak"``.

    ``http`` needs ``http_url``; without one it is skipped (so one configuration works with and without a
    provider contract). Raises ValueError for unknown names or when no engine remains.
    """
    names = list(dict.fromkeys(n.strip().lower() for n in order.split(",") if n.strip()))
    unknown = [n for n in names if n not in ENGINE_NAMES]
    if unknown:
        raise ValueError(f"unknown speech engine(s) {unknown}; choose from {list(ENGINE_NAMES)}")
    engines: list[SpeechEngine] = []
    for name in names:
        if name == "gtts":
            engines.append(GTTSEngine(timeout=gtts_timeout, base_url=gtts_url))
        elif name == "http":
            if http_url:
                engines.append(
                    HttpEngine(http_url, http_key, timeout=http_timeout, voice=http_voice, voices=http_voices)
                )
            else:
                log.info("speech engine 'http' skipped: no URL configured")
        else:
            engines.append(EspeakEngine())
    if not engines:
        raise ValueError("no speech engine configured")
    return engines


def synthesize_with_fallback(
    text: str, engines: Sequence[SpeechEngine], *, voice: str | None = None, speed: float = 1.0
) -> tuple[AudioSegment, str, list[str]]:
    """Try each engine in order; return ``(audio, engine_name, errors_of_engines_that_failed_first)``."""
    _check_speed(speed)
    text = _clean_text(text)
    if not text:
        raise SpeechError("nothing to synthesize: the text is empty")
    if not engines:
        raise SpeechError("no speech engine configured")
    errors: list[str] = []
    for engine in engines:
        name = getattr(engine, "name", type(engine).__name__)
        try:
            seg = engine.synthesize(text, voice=voice, speed=speed)
        except SpeechError as exc:
            message = str(exc) if str(exc).startswith(f"{name}:") else f"{name}: {exc}"
        except Exception as exc:  # a broken engine must not stop the fallback chain
            log.exception("speech engine %s crashed", name)
            message = f"{name}: unexpected {type(exc).__name__}: {exc}"
        else:
            if len(seg) > 0:
                if errors:
                    log.warning("speech fell back to %s after: %s", name, "; ".join(errors))
                return seg, name, errors
            message = f"{name}: produced empty audio"
        log.info("speech engine failed: %s", message)
        errors.append(message)
    raise SpeechError("all speech engines failed: " + "; ".join(errors), errors=errors)
