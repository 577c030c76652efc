"""audio/: real speech, real ffmpeg, real files. The only fake is Google's HTTP endpoint (audio_fakes)."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from audio_fakes import FakeCloudTTS, FakeGoogleTTS  # tests/ is on sys.path (pytest rootdir conftest)

from audio import (
    ESPEAK_VOICES,
    AudioError,
    EspeakEngine,
    GTTSEngine,
    HttpEngine,
    MediaStore,
    RenderedAudio,
    SpeechError,
    decode,
    default_engines,
    ffmpeg_exe,
    prepare_for_broadcast,
    render_speech,
    synthesize_with_fallback,
)
from audio.processing import AudioSegment

SENTENCE = "Ủy ban nhân dân phường thông báo lịch tiêm phòng vào sáng thứ bảy."
FAKE_TONE_MS = 1200


# ------------------------------------------------------------------------------------------ helpers


def ffmpeg(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", *args], input=stdin, capture_output=True, timeout=60
    )


def loudness(mp3: bytes) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) measured by ffmpeg's EBU R128 filter."""
    proc = ffmpeg("-i", "pipe:0", "-af", "ebur128=peak=true", "-f", "null", "-", stdin=mp3)
    summary = proc.stderr.decode().rsplit("Summary:", 1)[-1]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def first_sound_ms(seg: AudioSegment, threshold_dbfs: float = -45.0) -> int:
    for start in range(0, len(seg), 5):
        if seg[start : start + 5].dBFS > threshold_dbfs:
            return start
    return len(seg)


@pytest.fixture(scope="module")
def tone_mp3() -> bytes:
    """A real MP3 shaped like gTTS output (24 kHz mono 32 kbps), encoded by ffmpeg."""
    proc = ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={FAKE_TONE_MS / 1000}",
        "-ar", "24000", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3", "pipe:1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def fake_google(tone_mp3: bytes) -> Iterator[FakeGoogleTTS]:
    with FakeGoogleTTS(tone_mp3) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # gTTS sends through urllib's environment proxies, which would capture requests to 127.0.0.1.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------------------------------- espeak


def test_espeak_speaks_vietnamese() -> None:
    seg = EspeakEngine().synthesize(SENTENCE)
    assert 1_000 <= len(seg) <= 15_000
    assert seg.channels == 1
    assert seg.dBFS > -35, "speech must not be (near) silent"
    assert seg.max_dBFS > -10


def same_speech(a: AudioSegment, b: AudioSegment) -> bool:
    """espeak-ng is not bit-reproducible within a process (a few ms of jitter), so compare fingerprints."""
    return abs(len(a) - len(b)) <= 0.01 * len(b) and abs(a.dBFS - b.dBFS) <= 0.15


def test_espeak_regional_voices_differ() -> None:
    renders = {voice: EspeakEngine(voice=voice).synthesize(SENTENCE) for voice in ESPEAK_VOICES}
    assert all(len(seg) > 1_000 for seg in renders.values())
    for a, b in itertools.combinations(ESPEAK_VOICES, 2):
        assert not same_speech(renders[a], renders[b]), f"{a} and {b} must sound different"
    # The per-call voice overrides the engine's default.
    assert same_speech(EspeakEngine().synthesize(SENTENCE, voice="vi-vn-x-south"), renders["vi-vn-x-south"])


def test_espeak_speed_changes_duration() -> None:
    engine = EspeakEngine()
    slow, normal, fast = (len(engine.synthesize(SENTENCE, speed=s)) for s in (0.75, 1.0, 1.5))
    assert slow > normal * 1.15
    assert fast < normal * 0.85
    with pytest.raises(ValueError):
        engine.synthesize(SENTENCE, speed=5)


def test_espeak_unknown_voice_and_empty_text_raise_speech_error() -> None:
    with pytest.raises(SpeechError, match="unknown voice") as info:
        EspeakEngine(voice="xx-nowhere").synthesize(SENTENCE)
    assert info.value.engine == "espeak"
    with pytest.raises(SpeechError, match="no text"):
        EspeakEngine().synthesize("   \n ")


@pytest.mark.parametrize("voice", ["en", "klingon", "vi+x9", "fr+f1"])
def test_espeak_refuses_non_vietnamese_voices(voice: str) -> None:
    """libespeak-ng itself accepts "en" or the variant "klingon" and reads Vietnamese with English rules."""
    with pytest.raises(SpeechError, match="unknown voice"):
        EspeakEngine().synthesize(SENTENCE, voice=voice)


def test_espeak_accent_names_and_gender_variants() -> None:
    engine = EspeakEngine()
    assert same_speech(engine.synthesize(SENTENCE, voice="south"), engine.synthesize(SENTENCE, voice="vi-vn-x-south"))
    female = engine.synthesize(SENTENCE, voice="north+f3")
    assert len(female) > 1_000 and not same_speech(female, engine.synthesize(SENTENCE, voice="north"))


def test_espeak_is_thread_safe() -> None:
    """libespeak-ng is global state: concurrent calls must not mix voices or samples."""
    voices = list(ESPEAK_VOICES) * 3
    expected = {v: EspeakEngine(voice=v).synthesize(SENTENCE) for v in ESPEAK_VOICES}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda v: EspeakEngine(voice=v).synthesize(SENTENCE), voices))
    for voice, seg in zip(voices, results, strict=True):
        assert same_speech(seg, expected[voice]), voice


def test_decomposed_unicode_is_normalised() -> None:
    """Unnormalised (NFD) input makes espeak read ~4% longer and differently; it must be normalised."""
    nfd = unicodedata.normalize("NFD", SENTENCE)
    assert nfd != SENTENCE
    assert same_speech(EspeakEngine().synthesize(nfd), EspeakEngine().synthesize(SENTENCE))


# ---------------------------------------------------------------------------------------- mastering


def test_render_speech_is_broadcast_ready() -> None:
    rendered = render_speech(SENTENCE, [EspeakEngine()], lead_in_ms=600)
    assert isinstance(rendered, RenderedAudio)
    assert rendered.engine == "espeak"
    assert rendered.content_type == "audio/mpeg"
    assert rendered.data[:3] == b"ID3" or rendered.data[0] == 0xFF

    # ffmpeg itself (not pydub) must see a mono MP3.
    info = ffmpeg("-i", "pipe:0", "-f", "null", "-", stdin=rendered.data).stderr.decode()
    assert re.search(r"Audio: mp3.*, 44100 Hz, mono", info), info

    decoded = decode(rendered.data)
    assert decoded.channels == 1
    assert abs(len(decoded) - rendered.duration_ms) <= 100
    assert 1_500 <= rendered.duration_ms <= 16_000

    # Amplifier warm-up: at least 500 ms of silence before the first word, and not much more.
    assert decoded[:500].max_dBFS < -60
    assert 500 <= first_sound_ms(decoded) <= 700

    integrated, true_peak = loudness(rendered.data)
    assert -24 <= integrated <= -12, integrated
    assert true_peak <= -1.0, true_peak


def test_prepare_for_broadcast_trims_silence_and_levels_quiet_input() -> None:
    speech = EspeakEngine().synthesize(SENTENCE)
    padded = (
        AudioSegment.silent(2_000, frame_rate=speech.frame_rate)
        + speech.apply_gain(-20)  # a quiet recording
        + AudioSegment.silent(3_000, frame_rate=speech.frame_rate)
    ).set_channels(2)  # stereo in, mono out
    mp3, duration_ms = prepare_for_broadcast(padded, lead_in_ms=800)
    decoded = decode(mp3)
    assert decoded.channels == 1
    assert abs(len(decoded) - duration_ms) <= 100
    assert 750 <= first_sound_ms(decoded) <= 900
    # 2 s + 3 s of input silence are gone: lead-in + speech + short tail remain.
    assert duration_ms < len(speech) + 800 + 600
    integrated, _ = loudness(mp3)
    assert -24 <= integrated <= -12, integrated


def test_prepare_for_broadcast_rejects_silence() -> None:
    with pytest.raises(AudioError, match="silent"):
        prepare_for_broadcast(AudioSegment.silent(2_000, frame_rate=22050))


def test_decode_rejects_non_audio() -> None:
    with pytest.raises(AudioError):
        decode(b"<html><body>Service unavailable</body></html>" * 50)
    with pytest.raises(AudioError):
        decode(b"")


def test_decode_reads_formats_without_ffprobe(tmp_path: Path) -> None:
    """Ogg/Opus stereo at 48 kHz (e.g. a phone recording upload) decodes through ffmpeg alone."""
    proc = ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=300:duration=1.5", "-ac", "2", "-ar", "48000",
        "-c:a", "libopus", "-f", "ogg", "pipe:1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    seg = decode(proc.stdout)
    assert seg.channels == 2
    assert abs(len(seg) - 1_500) <= 30


def test_render_time_for_500_characters_is_small() -> None:
    text = ((SENTENCE + " ") * 8)[:500]
    started = time.perf_counter()
    rendered = render_speech(text, [EspeakEngine()])
    elapsed = time.perf_counter() - started
    assert elapsed < 5, elapsed
    assert 15_000 <= rendered.duration_ms <= 60_000


# --------------------------------------------------------------------------------------------- gTTS


def test_gtts_success_through_its_http_boundary(fake_google: FakeGoogleTTS) -> None:
    engine = GTTSEngine(timeout=2.0, base_url=fake_google.url)
    seg, name, errors = synthesize_with_fallback(SENTENCE, [engine, EspeakEngine()])
    assert (name, errors) == ("gtts", [])
    assert abs(len(seg) - FAKE_TONE_MS) <= 60
    assert fake_google.requests == [[SENTENCE, "vi", None, "null"]]


def test_gtts_long_text_is_sent_in_parts_and_concatenated(fake_google: FakeGoogleTTS) -> None:
    text = " ".join([SENTENCE] * 4)  # > 100 characters: gTTS splits it into several requests
    seg = GTTSEngine(timeout=2.0, base_url=fake_google.url).synthesize(text)
    parts = len(fake_google.requests)
    assert parts >= 3
    assert abs(len(seg) - parts * FAKE_TONE_MS) <= 60 * parts


def test_gtts_render_speech_end_to_end(fake_google: FakeGoogleTTS) -> None:
    engines = default_engines("gtts,espeak", gtts_timeout=2.0, gtts_url=fake_google.url)
    rendered = render_speech(SENTENCE, engines)
    assert rendered.engine == "gtts"
    assert rendered.warnings == ()
    assert abs(rendered.duration_ms - (600 + FAKE_TONE_MS + 300)) <= 120


def test_gtts_speed(fake_google: FakeGoogleTTS) -> None:
    engine = GTTSEngine(timeout=2.0, base_url=fake_google.url)
    fast = engine.synthesize(SENTENCE, speed=1.5)  # Google has one speed: tempo changed by ffmpeg
    assert abs(len(fast) - FAKE_TONE_MS / 1.5) <= 60
    engine.synthesize(SENTENCE, speed=0.75)  # gTTS's own slow mode
    assert [r[2] for r in fake_google.requests] == [None, True]


@pytest.mark.parametrize("status", [429, 500])
def test_gtts_http_error_falls_back_to_espeak(fake_google: FakeGoogleTTS, status: int) -> None:
    fake_google.mode = status
    engines = [GTTSEngine(timeout=2.0, base_url=fake_google.url), EspeakEngine()]
    seg, name, errors = synthesize_with_fallback(SENTENCE, engines)
    assert name == "espeak"
    assert len(seg) > 1_000
    assert len(errors) == 1 and errors[0].startswith("gtts:") and str(status) in errors[0]

    rendered = render_speech(SENTENCE, engines)
    assert rendered.engine == "espeak"
    assert any(str(status) in w for w in rendered.warnings)


@pytest.mark.parametrize("mode", ["garbage", "empty"])
def test_gtts_unusable_answer_raises_speech_error(fake_google: FakeGoogleTTS, mode: str) -> None:
    fake_google.mode = mode
    with pytest.raises(SpeechError, match="^gtts: ") as info:
        GTTSEngine(timeout=2.0, base_url=fake_google.url).synthesize(SENTENCE)
    assert info.value.engine == "gtts"


def test_gtts_server_that_never_answers_times_out(fake_google: FakeGoogleTTS) -> None:
    fake_google.mode = "hang"
    started = time.monotonic()
    with pytest.raises(SpeechError, match="did not answer within 1 s"):
        GTTSEngine(timeout=1.0, base_url=fake_google.url).synthesize(SENTENCE)
    assert time.monotonic() - started < 5


def test_real_gtts_without_internet_fails_fast() -> None:
    """Default URL (translate.google.com). Offline this must fail quickly, never hang."""
    started = time.monotonic()
    try:
        seg = GTTSEngine(timeout=2.0).synthesize("Xin chào")
    except SpeechError as exc:
        assert str(exc).startswith("gtts: ")
    else:  # a machine with internet: the real service answered
        assert len(seg) > 0
    assert time.monotonic() - started < 10


def test_all_engines_failing_lists_every_error(fake_google: FakeGoogleTTS) -> None:
    fake_google.mode = 500
    engines = [GTTSEngine(timeout=2.0, base_url=fake_google.url), EspeakEngine(voice="xx-nowhere")]
    with pytest.raises(SpeechError, match="all speech engines failed") as info:
        synthesize_with_fallback(SENTENCE, engines)
    assert [e.split(":")[0] for e in info.value.errors] == ["gtts", "espeak"]
    assert "500" in str(info.value) and "xx-nowhere" in str(info.value)


def test_fallback_argument_checks() -> None:
    with pytest.raises(SpeechError, match="empty"):
        synthesize_with_fallback("  ", [EspeakEngine()])
    with pytest.raises(SpeechError, match="no speech engine"):
        synthesize_with_fallback(SENTENCE, [])


def test_default_engines_order() -> None:
    assert [e.name for e in default_engines()] == ["gtts", "espeak"]
    assert [e.name for e in default_engines(" espeak , gtts ")] == ["espeak", "gtts"]
    assert [e.name for e in default_engines("espeak")] == ["espeak"]
    gtts = default_engines("gtts", gtts_timeout=3.5, gtts_url="http://proxy.local")[0]
    assert isinstance(gtts, GTTSEngine) and (gtts.timeout, gtts.base_url) == (3.5, "http://proxy.local")
    with pytest.raises(ValueError, match="unknown"):
        default_engines("gtts,polly")
    with pytest.raises(ValueError):
        default_engines(" , ")


def test_gtts_retries_429_with_back_off_then_succeeds(fake_google: FakeGoogleTTS) -> None:
    fake_google.script = [429, 429]  # rate-limited twice, then Google answers
    engine = GTTSEngine(timeout=2.0, base_url=fake_google.url, retries=2, backoff=0.2)
    seg, name, errors = synthesize_with_fallback(SENTENCE, [engine, EspeakEngine()])
    assert (name, errors) == ("gtts", [])
    assert abs(len(seg) - FAKE_TONE_MS) <= 60
    assert engine.attempts == 3 and len(fake_google.times) == 3
    waits = [b - a for a, b in itertools.pairwise(fake_google.times)]
    assert 0.2 <= waits[0] < 0.6 and 0.4 <= waits[1] < 0.9, waits  # exponential: 0.2 s, then 0.4 s


def test_gtts_persistent_429_gives_up_after_retries_and_falls_back(fake_google: FakeGoogleTTS) -> None:
    fake_google.mode = 429
    engine = GTTSEngine(timeout=2.0, base_url=fake_google.url, retries=2, backoff=0.1)
    seg, name, errors = synthesize_with_fallback(SENTENCE, [engine, EspeakEngine()])
    assert name == "espeak" and len(seg) > 1_000
    assert len(fake_google.requests) == 3, "one request and two retries, no more"
    assert "429" in errors[0] and "after 3 attempts" in errors[0]


def test_gtts_honours_retry_after_and_never_retries_other_errors(fake_google: FakeGoogleTTS) -> None:
    fake_google.script = [429]
    fake_google.retry_after = "1"
    engine = GTTSEngine(timeout=2.0, base_url=fake_google.url, retries=2, backoff=0.05)
    engine.synthesize(SENTENCE)
    assert fake_google.times[1] - fake_google.times[0] >= 0.95
    fake_google.mode, fake_google.retry_after = 500, None
    with pytest.raises(SpeechError, match="500"):
        engine.synthesize(SENTENCE)
    assert engine.attempts == 1, "a server error is not a rate limit: fall back at once"


def test_gtts_retry_budget_is_bounded(fake_google: FakeGoogleTTS) -> None:
    """A long Retry-After must not keep the officer waiting beyond max_total."""
    fake_google.mode = 429
    fake_google.retry_after = "30"
    started = time.monotonic()
    engine = GTTSEngine(timeout=1.0, base_url=fake_google.url, retries=5, backoff=0.5, max_total=2.0)
    with pytest.raises(SpeechError, match="429"):
        engine.synthesize(SENTENCE)
    assert time.monotonic() - started < 3.0
    assert engine.attempts == 2


# ------------------------------------------------------------------------------------ HTTP engine


@pytest.fixture
def cloud(tone_mp3: bytes) -> Iterator[FakeCloudTTS]:
    with FakeCloudTTS(tone_mp3, key="k-123") as server:
        yield server


@pytest.mark.parametrize("mode", ["raw", "url", "base64"])
def test_http_engine_accepts_every_answer_shape(cloud: FakeCloudTTS, mode: str) -> None:
    cloud.mode = mode
    engine = HttpEngine(cloud.url, "k-123", timeout=5, voice="north", voices={"north": "banmai", "south": "lannhi"})
    nfd = unicodedata.normalize("NFD", SENTENCE)
    seg = engine.synthesize(nfd, voice="south", speed=1.25)
    assert abs(len(seg) - FAKE_TONE_MS) <= 60
    method, path, auth, payload = cloud.requests[0]
    assert (method, path, auth) == ("POST", "/v1/tts", "Bearer k-123")
    assert payload == {"text": SENTENCE, "voice": "lannhi", "speed": 1.25}, "NFC text, mapped voice"
    if mode == "url":
        assert cloud.requests[1][:3] == ("GET", "/files/1.mp3", "Bearer k-123")
    else:
        assert len(cloud.requests) == 1
    engine.synthesize(SENTENCE)
    assert cloud.requests[-2 if mode == "url" else -1][3]["voice"] == "banmai", "the engine's default voice"


def test_http_engine_polls_an_audio_link_until_ready(cloud: FakeCloudTTS) -> None:
    cloud.mode, cloud.pending_polls = "url", 2
    seg = HttpEngine(cloud.url, "k-123", timeout=5).synthesize(SENTENCE)
    assert abs(len(seg) - FAKE_TONE_MS) <= 60
    assert [r[0] for r in cloud.requests] == ["POST", "GET", "GET", "GET"]


def test_http_engine_keeps_the_key_off_other_hosts(cloud: FakeCloudTTS) -> None:
    cloud.mode = "url_other_host"
    HttpEngine(cloud.url, "k-123", timeout=5).synthesize(SENTENCE)
    assert cloud.requests[0][2] == "Bearer k-123" and cloud.requests[1][:1] == ("GET",)
    assert cloud.requests[1][2] is None, "the bearer token must not leak to another host"


@pytest.mark.parametrize("key", ["wrong-key", None])
def test_http_engine_bad_key_is_a_clear_error(cloud: FakeCloudTTS, key: str | None) -> None:
    with pytest.raises(SpeechError) as info:
        HttpEngine(cloud.url, key, timeout=5).synthesize(SENTENCE)
    assert str(info.value) == "http: the TTS service answered HTTP 401: Invalid API key"
    assert info.value.engine == "http"


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error_json", "reported an error: Quota exceeded"),
        ("html", "text/html, neither audio nor JSON"),
        ("garbage", "returned unusable audio"),
    ],
)
def test_http_engine_bad_answers(cloud: FakeCloudTTS, mode: str, message: str) -> None:
    cloud.mode = mode
    with pytest.raises(SpeechError, match=message):
        HttpEngine(cloud.url, "k-123", timeout=5).synthesize(SENTENCE)


def test_http_engine_times_out_and_falls_back(cloud: FakeCloudTTS) -> None:
    cloud.mode = "hang"
    engine = HttpEngine(cloud.url, "k-123", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(SpeechError, match="did not answer within 1 s"):
        engine.synthesize(SENTENCE)
    assert time.monotonic() - started < 3
    seg, name, errors = synthesize_with_fallback(SENTENCE, [engine, EspeakEngine()])
    assert name == "espeak" and len(seg) > 1_000 and "did not answer" in errors[0]


def test_http_engine_link_never_ready_respects_the_deadline(cloud: FakeCloudTTS) -> None:
    cloud.mode, cloud.pending_polls = "url", 1_000
    started = time.monotonic()
    with pytest.raises(SpeechError, match="not ready within 1.5 s"):
        HttpEngine(cloud.url, "k-123", timeout=1.5).synthesize(SENTENCE)
    assert time.monotonic() - started < 3


def test_http_engine_unreachable_and_bad_configuration() -> None:
    with pytest.raises(SpeechError, match="cannot reach the TTS service"):
        HttpEngine("http://127.0.0.1:9/v1/tts", "k", timeout=2).synthesize(SENTENCE)
    with pytest.raises(ValueError):
        HttpEngine("ftp://example.org/tts")
    with pytest.raises(ValueError):
        HttpEngine("http://x", timeout=0)


def test_default_engines_with_http_provider(cloud: FakeCloudTTS) -> None:
    engines = default_engines("http,gtts,espeak", http_url=cloud.url, http_key="k-123", http_timeout=3)
    assert [e.name for e in engines] == ["http", "gtts", "espeak"]
    rendered = render_speech(SENTENCE, engines)
    assert rendered.engine == "http" and rendered.warnings == ()
    # Without a URL the http engine is skipped, so one order works with and without a contract.
    assert [e.name for e in default_engines("http,espeak")] == ["espeak"]


# -------------------------------------------------------------------------------------------- store


def test_media_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    data = b"\xff\xfb" + os.urandom(4096)
    info = store.put(data)
    digest = hashlib.sha256(data).hexdigest()
    assert (info.sha256, info.size) == (digest, len(data))
    assert info.path == store.path(digest) == tmp_path / "media" / f"{digest}.mp3"
    assert info.path.read_bytes() == data
    assert store.exists(digest) and not store.exists(digest, "ogg")

    mtime = info.path.stat().st_mtime_ns
    assert store.put(data) == info
    assert info.path.stat().st_mtime_ns == mtime, "an identical put must not rewrite the file"

    other = store.put(b"other content", ext="ogg")
    assert other.path.name == f"{hashlib.sha256(b'other content').hexdigest()}.ogg"
    assert sorted(p.name for p in store.root.iterdir()) == sorted([info.path.name, other.path.name])


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "a" * 63 + "/", ""]
    + ["a" * 32 + "\x00" + "a" * 31, "a" * 64 + "\n"],
)
def test_media_store_rejects_bad_hashes(tmp_path: Path, bad: str) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(ValueError):
        store.path(bad)
    with pytest.raises(ValueError):
        store.exists(bad)


def test_media_store_rejects_bad_extensions(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    for ext in ("../mp3", "mp3/..", "", "MP3", "toolongext"):
        with pytest.raises(ValueError):
            store.path("a" * 64, ext)
    with pytest.raises(ValueError):
        store.put(b"x", ext="../x")
    assert list(tmp_path.iterdir()) == []


def test_media_store_concurrent_puts_leave_only_complete_files(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    blobs = [os.urandom(256 * 1024) for _ in range(4)]
    barrier = threading.Barrier(16)

    def put(i: int) -> str:
        barrier.wait()
        return store.put(blobs[i % 4]).sha256

    with ThreadPoolExecutor(max_workers=16) as pool:
        digests = set(pool.map(put, range(16)))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{d}.mp3" for d in digests)
    assert len(names) == 4, "no temporary or partial files may remain"
    for blob in blobs:
        assert store.path(hashlib.sha256(blob).hexdigest()).read_bytes() == blob


# --------------------------------------------------------------------------------------------- rules


def test_audio_imports_neither_flask_nor_paho() -> None:
    code = "import sys, audio; print([m for m in sys.modules if m.split('.')[0] in ('flask', 'paho')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
