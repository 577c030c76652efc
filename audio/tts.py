"""Text-to-speech engines: Google (gTTS, online) with an offline espeak-ng fallback.

Speech is rendered when content is saved or approved, never at play time, so a slow or failing engine
costs the officer a retry, not a silent loudspeaker.
"""

from __future__ import annotations

import ctypes
import io
import logging
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import requests
from gtts import gTTS
from gtts.tts import gTTSError

from .processing import AudioError, AudioSegment, change_tempo, decode

log = logging.getLogger(__name__)

__all__ = [
    "ESPEAK_VOICES",
    "EspeakEngine",
    "GTTSEngine",
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
    """

    name = "gtts"

    def __init__(self, timeout: float = 10.0, lang: str = "vi", base_url: str | None = None) -> None:
        if timeout <= 0:
            raise ValueError("gTTS timeout must be positive")
        self.timeout = timeout
        self.lang = lang
        self.base_url = base_url

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment:
        _check_speed(speed)
        text = _clean_text(text)
        if not text:
            raise SpeechError("gtts: no text to speak", engine=self.name)
        slow = speed < 0.85
        buf = io.BytesIO()
        try:
            tts = _RoutedGTTS(
                text, base_url=self.base_url, lang=self.lang, slow=slow, lang_check=False,
                timeout=self.timeout,
            )  # fmt: skip
            for chunk in tts.stream():
                buf.write(chunk)
        except Exception as exc:  # gTTSError, requests timeouts raised mid-body, AssertionError, ...
            message = f"gtts: {_describe_gtts_failure(exc, self.timeout)}"
            raise SpeechError(message, engine=self.name) from exc
        if not buf.getvalue():
            raise SpeechError("gtts: the TTS service returned no audio", engine=self.name)
        try:
            seg = decode(buf.getvalue())
        except AudioError as exc:
            message = f"gtts: the TTS service returned unusable audio ({exc})"
            raise SpeechError(message, engine=self.name) from exc
        if not slow and abs(speed - 1.0) > 0.02:
            seg = change_tempo(seg, speed)
        return seg


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

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    """The process-wide libespeak-ng instance. Every use must hold ``_ESPEAK_LOCK``."""

    def __init__(self) -> None:
        import espeakng_loader

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

    def _on_samples(self, wav: ctypes._Pointer, count: int, _events: int | None) -> int:
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
        except Exception as exc:  # ImportError, OSError from dlopen, RuntimeError from the loader
            raise SpeechError(f"espeak: libespeak-ng is unavailable ({exc})", engine="espeak") from exc
    return _espeak


class EspeakEngine:
    """Offline espeak-ng through ctypes. Robotic but intelligible, fast, always available.

    ``speed`` 1.0 is 160 words per minute, a little under espeak's 175 default: street echo smears
    fast speech from loudspeakers.
    """

    name = "espeak"
    BASE_RATE_WPM = 160

    def __init__(self, voice: str = "vi") -> None:
        self.voice = voice

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment:
        _check_speed(speed)
        text = _clean_text(text)
        if not text:
            raise SpeechError("espeak: no text to speak", engine=self.name)
        rate = max(80, min(450, round(self.BASE_RATE_WPM * speed)))
        with _ESPEAK_LOCK:
            engine = _espeak_instance()
            pcm = engine.synth(text, voice or self.voice, rate)
            sample_rate = engine.sample_rate
        if not pcm:
            raise SpeechError("espeak: synthesis produced no audio", engine=self.name)
        return AudioSegment(data=pcm, sample_width=2, frame_rate=sample_rate, channels=1)


# --------------------------------------------------------------------------------------- fallback

_ENGINE_NAMES = ("gtts", "espeak")


def default_engines(
    order: str = "gtts,espeak", gtts_timeout: float = 10.0, gtts_url: str | None = None
) -> list[SpeechEngine]:
    """Build engines from a comma-separated preference list such as ``"gtts,espeak"`` or ``"espeak"``."""
    names = list(dict.fromkeys(n.strip().lower() for n in order.split(",") if n.strip()))
    unknown = [n for n in names if n not in _ENGINE_NAMES]
    if unknown:
        raise ValueError(f"unknown speech engine(s) {unknown}; choose from {list(_ENGINE_NAMES)}")
    if not names:
        raise ValueError("no speech engine configured")
    engines: list[SpeechEngine] = []
    for name in names:
        if name == "gtts":
            engines.append(GTTSEngine(timeout=gtts_timeout, base_url=gtts_url))
        else:
            engines.append(EspeakEngine())
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
