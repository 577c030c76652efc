"""The broadcast chain on real audio, measured from the outside.

Every loudness figure here comes from decoding the produced MP3 with the bundled ffmpeg's ``ebur128``
filter in a separate process - not from what the chain reports about itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_fakes import FakeCloudTTS

from audio import (
    AudioError,
    ChainSettings,
    EspeakEngine,
    HttpEngine,
    announcement_key,
    chime_duration_ms,
    chime_pcm,
    decode,
    ffmpeg_exe,
    master_audio,
    render_announcement,
)
from audio.processing import AudioSegment
from audio.tts import SpeechError

SENTENCE = "Ủy ban nhân dân phường thông báo lịch tiêm phòng vào sáng thứ bảy."
BULLETIN = "UBND phường thông báo: từ 7h00 ngày 15/3/2025, tiêm phòng cho trẻ dưới 5 tuổi tại trạm y tế."


# ------------------------------------------------------------------------------------------ helpers


def ebur128(data: bytes) -> dict[str, float]:
    """Integrated loudness, true peak and duration of any audio file, measured by a separate ffmpeg."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", "pipe:0", "-af", "ebur128=peak=true", "-f", "null", "-"],
        input=data, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    text = proc.stderr.decode()
    summary = text.rsplit("Summary:", 1)[-1]
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", text)[-1]
    return {
        "lufs": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
        "tp": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)),
        "ms": (int(h) * 3600 + int(m) * 60 + float(s)) * 1000,
    }


def stream_info(data: bytes) -> str:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", "pipe:0"], input=data, capture_output=True, timeout=60)
    match = re.search(r"Audio: .*", proc.stderr.decode())
    assert match, proc.stderr.decode()
    return match.group(0)


def sound_spans(seg: AudioSegment, threshold_dbfs: float = -45.0, step: int = 10) -> list[tuple[int, int]]:
    """(start, end) in ms of the stretches louder than ``threshold_dbfs``, gaps under 400 ms bridged."""
    spans: list[list[int]] = []
    for start in range(0, len(seg), step):
        if seg[start : start + step].dBFS > threshold_dbfs:
            if spans and start - spans[-1][1] <= 400:
                spans[-1][1] = start + step
            else:
                spans.append([start, start + step])
    return [(a, b) for a, b in spans]


@pytest.fixture(scope="module")
def speech() -> AudioSegment:
    return EspeakEngine().synthesize(SENTENCE)


def padded(seg: AudioSegment, before_ms: int, after_ms: int, gain_db: float = 0.0) -> AudioSegment:
    rate = seg.frame_rate
    return AudioSegment.silent(before_ms, frame_rate=rate) + seg.apply_gain(gain_db) + AudioSegment.silent(
        after_ms, frame_rate=rate
    )


def full_scale_tone(ms: int = 4000) -> AudioSegment:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"aevalsrc='0.99*sgn(sin(2*PI*180*t))':s=22050:d={ms / 1000}", "-c:a", "pcm_s16le", "-f", "wav", "pipe:1"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return decode(proc.stdout)


# ------------------------------------------------------------------------------------ trim, lead-in


def test_silence_trimmed_and_lead_in_added(speech: AudioSegment) -> None:
    settings = ChainSettings(lead_in_ms=1000, tail_ms=300)
    out = master_audio(padded(speech, 2500, 4000), settings)
    decoded = decode(out.data)
    spans = sound_spans(decoded)
    assert spans, "the output must contain speech"
    first, last = spans[0][0], spans[-1][1]
    # Exactly the lead-in before the first word (not the 2.5 s of input silence), nothing long after.
    assert 950 <= first <= 1100, first
    assert len(decoded) - last <= 300 + 150
    assert abs(out.speech_ms - len(speech)) <= 200, "only the padding was trimmed, no speech"
    assert abs(out.duration_ms - (1000 + out.speech_ms + 300)) <= 150
    assert decoded[:900].max_dBFS < -60, "lead-in is real silence for amplifier warm-up"


@pytest.mark.parametrize("lead_in", [0, 600, 3000])
def test_lead_in_is_configurable(speech: AudioSegment, lead_in: int) -> None:
    out = master_audio(speech, ChainSettings(lead_in_ms=lead_in))
    first = sound_spans(decode(out.data))[0][0]
    assert lead_in - 50 <= first <= lead_in + 150, (lead_in, first)


# ------------------------------------------------------------------------------------------ loudness


@pytest.mark.parametrize(
    "case", ["quiet", "loud_clipped", "full_scale_square", "chimes", "emergency", "repeat", "bitrate_32k"]
)
def test_output_loudness_measured_independently(speech: AudioSegment, case: str) -> None:
    settings = ChainSettings()
    seg = speech
    if case == "quiet":
        seg = padded(speech, 500, 500, gain_db=-35)  # peaks near -35 dBFS: a far-away microphone
    elif case == "loud_clipped":
        seg = speech.apply_gain(+18)  # clipped hard
    elif case == "full_scale_square":
        seg = full_scale_tone()
    elif case == "chimes":
        settings = ChainSettings(intro_chime=True, outro_chime=True)
    elif case == "emergency":
        settings = ChainSettings(intro_chime=True, outro_chime=True, emergency=True)
    elif case == "repeat":
        settings = ChainSettings(repeat=3, gap_ms=1500)
    elif case == "bitrate_32k":
        settings = ChainSettings(bitrate="32k")
    out = master_audio(seg, settings)
    measured = ebur128(out.data)
    assert -17.0 <= measured["lufs"] <= -15.0, measured
    assert measured["tp"] <= -1.0, measured
    assert abs(measured["ms"] - out.duration_ms) <= 100


@pytest.mark.parametrize("target", [-23.0, -18.0, -14.0])
def test_ward_loudness_target(speech: AudioSegment, target: float) -> None:
    out = master_audio(speech, ChainSettings(target_lufs=target))
    measured = ebur128(out.data)
    assert abs(measured["lufs"] - target) <= 1.0, measured
    assert measured["tp"] <= -1.0


def test_quiet_and_loud_inputs_end_equally_loud(speech: AudioSegment) -> None:
    """The complaint this chain exists for: one item twice as loud as the next."""
    quiet = ebur128(master_audio(speech.apply_gain(-30)).data)["lufs"]
    loud = ebur128(master_audio(speech.apply_gain(+12)).data)["lufs"]
    assert abs(quiet - loud) <= 1.0, (quiet, loud)


# ----------------------------------------------------------------------------- format, repeat, chimes


@pytest.mark.parametrize("bitrate", ["48k", "64k", "128k"])
def test_mono_mp3_at_the_configured_bitrate(speech: AudioSegment, bitrate: str) -> None:
    stereo = AudioSegment.from_mono_audiosegments(speech, speech.apply_gain(-6))
    out = master_audio(stereo, ChainSettings(bitrate=bitrate))
    info = stream_info(out.data)
    assert re.search(r"mp3.*44100 Hz, mono, .*\b" + bitrate[:-1] + r" kb/s", info), info
    assert decode(out.data).channels == 1


def test_stereo_input_with_one_silent_channel_is_kept(speech: AudioSegment) -> None:
    """A phone recording with the voice on one channel only must not lose it in the down-mix."""
    silent = AudioSegment(b"\0" * len(speech.raw_data), sample_width=speech.sample_width,
                          frame_rate=speech.frame_rate, channels=speech.channels)
    stereo = AudioSegment.from_mono_audiosegments(speech, silent)
    measured = ebur128(master_audio(stereo).data)
    assert -17 <= measured["lufs"] <= -15


@pytest.mark.parametrize(("repeat", "gap"), [(1, 3000), (2, 1000), (3, 2500)])
def test_repeat_with_gap(speech: AudioSegment, repeat: int, gap: int) -> None:
    settings = ChainSettings(repeat=repeat, gap_ms=gap, lead_in_ms=600, tail_ms=300)
    out = master_audio(speech, settings)
    expected = 600 + repeat * out.speech_ms + (repeat - 1) * gap + 300
    assert abs(out.duration_ms - expected) <= 150, (out.duration_ms, expected)
    spans = sound_spans(decode(out.data))
    assert len(spans) == repeat, spans
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert gap - 100 <= start - end <= gap + 150, (start - end, gap)


def test_chimes_are_deterministic_and_emergency_differs() -> None:
    chime_pcm.cache_clear()
    first = chime_pcm("intro")
    chime_pcm.cache_clear()
    assert chime_pcm("intro") == first, "same kind, same bytes"
    kinds = {kind: chime_pcm(kind) for kind in ("intro", "outro", "emergency")}
    assert len(set(kinds.values())) == 3
    assert chime_duration_ms("emergency") != chime_duration_ms("intro")
    for kind, pcm in kinds.items():
        seg = AudioSegment(data=pcm, sample_width=2, frame_rate=44100, channels=1)
        assert abs(len(seg) - chime_duration_ms(kind)) <= 1
        assert -3.5 <= seg.max_dBFS <= -2.5
        assert seg[-5:].max_dBFS < -40, "ends faded out, no click"


def test_chain_is_deterministic_and_chimes_are_laid_out(speech: AudioSegment) -> None:
    settings = ChainSettings(intro_chime=True, outro_chime=True, lead_in_ms=500, tail_ms=300)
    a, b = master_audio(speech, settings), master_audio(speech, settings)
    assert a.data == b.data, "same input and settings must give the same bytes (the cache relies on it)"
    expected = 500 + chime_duration_ms("intro") + 250 + a.speech_ms + 250 + chime_duration_ms("outro") + 300
    assert abs(a.duration_ms - expected) <= 150
    decoded = decode(a.data)
    assert 450 <= sound_spans(decoded)[0][0] <= 600, "the chime starts right after the lead-in"
    emergency = master_audio(speech, ChainSettings(intro_chime=True, outro_chime=True, emergency=True,
                                                   lead_in_ms=500, tail_ms=300))
    assert emergency.data != a.data
    assert abs(emergency.duration_ms - (a.duration_ms - 2 * 300)) <= 150  # 1.7 s chimes instead of 2.0 s


def test_silence_is_refused() -> None:
    with pytest.raises(AudioError, match="silent"):
        master_audio(AudioSegment.silent(3000, frame_rate=22050))


# --------------------------------------------------------------------------------------------- cache


class CountingEngine:
    """Real espeak, counting the calls (to prove a cache hit renders nothing)."""

    name = "espeak"

    def __init__(self) -> None:
        self.calls = 0
        self.inner = EspeakEngine()

    def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0) -> AudioSegment:
        self.calls += 1
        return self.inner.synthesize(text, voice=voice, speed=speed)


def test_cache_same_key_renders_nothing() -> None:
    engine = CountingEngine()
    settings = ChainSettings(engine_order=("espeak",))
    cache: dict[str, str] = {}
    first = render_announcement(BULLETIN, settings, [engine], cache)
    assert not first.cached and first.data and first.cacheable and engine.calls == 1
    assert not re.search(r"\d", first.text or ""), "the key is over the normalised text"
    cache[first.key] = first.sha256
    # The same words re-typed (NFD, extra spaces) are the same key: nothing is rendered.
    again = render_announcement("  " + unicodedata.normalize("NFD", BULLETIN).replace(" ", "  "), settings,
                                [engine], cache)
    assert again.cached and again.data is None and again.sha256 == first.sha256 and engine.calls == 1
    assert announcement_key(BULLETIN, settings) == first.key
    # Anything that changes the sound changes the key.
    for changed in (ChainSettings(engine_order=("espeak",), speed=1.2),
                    ChainSettings(engine_order=("espeak",), voice="south"),
                    ChainSettings(engine_order=("espeak",), intro_chime=True),
                    ChainSettings(engine_order=("espeak",), target_lufs=-18),
                    ChainSettings(engine_order=("espeak",), repeat=2)):
        assert changed.cache_key(first.text) != first.key
    assert render_announcement(BULLETIN + " Xin cảm ơn.", settings, [engine], cache).cached is False
    assert engine.calls == 2


def test_fallback_audio_is_not_cacheable(tone_server: FakeCloudTTS) -> None:
    """Audio from a fallback engine must not be pinned to the preferred engine's key."""
    tone_server.mode = "error_json"
    settings = ChainSettings(engine_order=("http", "espeak"))
    result = render_announcement(SENTENCE, settings, [HttpEngine(tone_server.url, "k", timeout=3), EspeakEngine()])
    assert result.engine == "espeak" and result.fell_back and not result.cacheable
    assert any("Quota exceeded" in w for w in result.warnings)


def test_empty_text_is_refused() -> None:
    with pytest.raises(SpeechError, match="empty"):
        render_announcement(" \n ", ChainSettings(engine_order=("espeak",)), [EspeakEngine()])


# ----------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def tone_mp3() -> bytes:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=330:duration=2",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "48k", "-f", "mp3", "pipe:1"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout


@pytest.fixture
def tone_server(tone_mp3: bytes) -> Iterator[FakeCloudTTS]:
    with FakeCloudTTS(tone_mp3, key="k") as server:
        yield server


def loaphuong() -> str:
    """The installed console script, next to this interpreter."""
    exe = Path(sys.executable).with_name("loaphuong")
    return str(exe) if exe.exists() else shutil.which("loaphuong") or "loaphuong"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOAPHUONG_") and "proxy" not in k.lower()}
    return subprocess.run([loaphuong(), *args], capture_output=True, text=True, timeout=120,
                          env={**base, **(env or {})}, cwd=cwd)


def test_cli_tts_espeak_is_broadcast_ready(tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    proc = run_cli("tts", BULLETIN, "-o", str(out), "--engine", "espeak", "--voice", "south", "--speed", "0.9",
                   "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["engine"] == "espeak" and summary["output"] == str(out)
    assert not re.search(r"\d", summary["text"]), summary["text"]
    data = out.read_bytes()
    measured = ebur128(data)
    assert -17.0 <= measured["lufs"] <= -15.0, measured
    assert measured["tp"] <= -1.0, measured
    assert "mono" in stream_info(data)
    assert abs(measured["ms"] - summary["duration_ms"]) <= 100


def test_cli_tts_speed_and_repeat_change_the_length(tmp_path: Path) -> None:
    lengths = {}
    for name, extra in {"normal": [], "fast": ["--speed", "1.5"], "twice": ["--repeat", "2", "--gap", "2000"]}.items():
        out = tmp_path / f"{name}.mp3"
        proc = run_cli("tts", SENTENCE, "-o", str(out), "--engine", "espeak", *extra)
        assert proc.returncode == 0, proc.stderr
        assert "LUFS" in proc.stdout and "engine espeak" in proc.stdout
        lengths[name] = ebur128(out.read_bytes())["ms"]
    assert lengths["fast"] < lengths["normal"] * 0.85
    speech = lengths["normal"] - 900  # minus lead-in and tail
    assert abs(lengths["twice"] - (lengths["normal"] + speech + 2000)) <= 200


def test_cli_tts_http_engine_from_environment(tmp_path: Path, tone_server: FakeCloudTTS) -> None:
    out = tmp_path / "cloud.mp3"
    env = {"LOAPHUONG_TTS_HTTP_URL": tone_server.url, "LOAPHUONG_TTS_HTTP_KEY": "k"}
    proc = run_cli("tts", SENTENCE, "-o", str(out), "--engine", "http", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "engine http" in proc.stdout
    assert tone_server.requests[0][2] == "Bearer k"
    measured = ebur128(out.read_bytes())
    assert -17.0 <= measured["lufs"] <= -15.0 and measured["tp"] <= -1.0


def test_cli_tts_auto_falls_back_to_espeak(tmp_path: Path, tone_server: FakeCloudTTS) -> None:
    tone_server.key = "another"  # the configured key is refused
    env = {"LOAPHUONG_TTS_HTTP_URL": tone_server.url, "LOAPHUONG_TTS_HTTP_KEY": "k",
           "LOAPHUONG_GTTS_URL": "http://127.0.0.1:9", "LOAPHUONG_GTTS_TIMEOUT": "2"}
    out = tmp_path / "auto.mp3"
    proc = run_cli("tts", SENTENCE, "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "engine espeak" in proc.stdout
    assert "HTTP 401" in proc.stderr and "gtts:" in proc.stderr, proc.stderr


def test_cli_tts_errors(tmp_path: Path) -> None:
    out = tmp_path / "x.mp3"
    proc = run_cli("tts", SENTENCE, "-o", str(out), "--engine", "http")
    assert proc.returncode == 2 and "LOAPHUONG_TTS_HTTP_URL" in proc.stderr
    proc = run_cli("tts", SENTENCE, "-o", str(out), "--engine", "espeak", "--voice", "klingon")
    assert proc.returncode == 1 and "unknown voice" in proc.stderr
    proc = run_cli("tts", SENTENCE, "-o", str(out), "--speed", "7")
    assert proc.returncode == 2 and "speed" in proc.stderr
    proc = run_cli("tts", "   ", "-o", str(out), "--engine", "espeak")
    assert proc.returncode == 1 and "empty" in proc.stderr
    assert not out.exists(), "nothing is written on failure"
