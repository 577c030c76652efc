"""Audio processing for broadcast: decode, level, encode and verify with the bundled ffmpeg.

imageio-ffmpeg ships ffmpeg but no ffprobe, so nothing here lets pydub probe a file: decoding runs
ffmpeg ourselves into a WAV file, which pydub then reads in pure Python.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import imageio_ffmpeg

# pydub warns at import time when no ffmpeg is on PATH; we always point it at our own binary.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub import silence as _silence

if TYPE_CHECKING:
    from .tts import SpeechEngine

log = logging.getLogger(__name__)

__all__ = [
    "AudioError",
    "AudioSegment",
    "RenderedAudio",
    "change_tempo",
    "decode",
    "encode_mp3",
    "ffmpeg_exe",
    "prepare_for_broadcast",
    "render_speech",
]

#: Output sample rate. 44.1 kHz MPEG-1 Layer III is the most widely supported by hardware decoders.
SAMPLE_RATE = 44100
#: Target average (RMS) level of the speech after trimming, in dBFS.
TARGET_DBFS = -18.0
#: Limiter ceiling before encoding; 0.5 dB below the -1 dBFS goal leaves room for MP3 overshoot.
PEAK_CEILING_DBFS = -1.5
#: At most this much gain reduction is left to the limiter; beyond it the level is held below target.
MAX_LIMITING_DB = 6.0
#: Speech is "silence" when quieter than this many dB below its own peak.
SILENCE_BELOW_PEAK_DB = 45.0
#: Silence kept before the first / after the last detected sound, so soft onsets are not chopped.
TRIM_PAD_MS = 30
#: The decoded MP3 may differ from the pre-encode length by at most this much.
VERIFY_TOLERANCE_MS = 150
FFMPEG_TIMEOUT_S = 120.0


class AudioError(Exception):
    """Audio could not be decoded, processed or encoded."""


@dataclass(frozen=True)
class RenderedAudio:
    """Broadcast-ready audio: MP3 bytes and the duration measured by decoding them back."""

    data: bytes
    duration_ms: int
    engine: str
    content_type: str = "audio/mpeg"
    warnings: tuple[str, ...] = ()


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $LOAPHUONG_FFMPEG, else the one bundled by imageio-ffmpeg.

    Also points pydub's ``AudioSegment.converter`` at it so pydub never looks for ffmpeg on PATH.
    """
    exe = os.environ.get("LOAPHUONG_FFMPEG") or imageio_ffmpeg.get_ffmpeg_exe()
    AudioSegment.converter = exe
    return exe


def _run_ffmpeg(args: Sequence[str], *, stdin: bytes | None = None, what: str) -> subprocess.CompletedProcess:
    exe = ffmpeg_exe()
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", *(["-nostdin"] if stdin is None else []), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise AudioError(f"ffmpeg not found at {exe!r} (set LOAPHUONG_FFMPEG)") from exc
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"ffmpeg timed out after {FFMPEG_TIMEOUT_S:.0f} s while trying to {what}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise AudioError(f"ffmpeg could not {what}: {' | '.join(detail) or f'exit code {proc.returncode}'}")
    return proc


def decode(data: bytes) -> AudioSegment:
    """Decode any audio format ffmpeg understands into a 16-bit PCM AudioSegment.

    Input goes through a temporary file rather than a pipe because some containers (MP4/M4A with the
    index at the end) need seeking; the output is a real WAV file so its header carries true sizes.
    """
    if not data:
        raise AudioError("cannot decode empty audio data")
    with tempfile.TemporaryDirectory(prefix="loaphuong-dec-") as tmp:
        src, dst = Path(tmp, "input"), Path(tmp, "output.wav")
        src.write_bytes(data)
        _run_ffmpeg(
            ["-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn"]
            + ["-c:a", "pcm_s16le", "-f", "wav", str(dst)],
            what="decode the audio data",
        )
        try:
            seg = AudioSegment(data=dst.read_bytes())  # from_wav(path) leaks its file handle
        except Exception as exc:  # pydub raises assorted errors on a malformed WAV
            raise AudioError(f"decoded WAV is unreadable: {exc}") from exc
    if seg.frame_count() == 0:
        raise AudioError("audio data decoded to zero samples")
    return seg


def _to_mono16(seg: AudioSegment) -> AudioSegment:
    return seg.set_channels(1).set_sample_width(2)


def encode_mp3(seg: AudioSegment, bitrate: str = "64k") -> bytes:
    """Encode as mono 44.1 kHz constant-bitrate MP3 with a LAME/Xing header (exact length, gapless)."""
    return _encode_mp3(seg, bitrate=bitrate)


def _encode_mp3(seg: AudioSegment, *, bitrate: str, filters: str | None = None) -> bytes:
    seg = _to_mono16(seg)
    with tempfile.TemporaryDirectory(prefix="loaphuong-enc-") as tmp:
        dst = Path(tmp, "output.mp3")
        _run_ffmpeg(
            ["-f", "s16le", "-ar", str(seg.frame_rate), "-ac", "1", "-i", "pipe:0"]
            + (["-af", filters] if filters else [])
            + ["-ar", str(SAMPLE_RATE), "-ac", "1", "-c:a", "libmp3lame", "-b:a", bitrate]
            + ["-map_metadata", "-1", "-f", "mp3", str(dst)],
            stdin=seg.raw_data,
            what="encode MP3",
        )
        return dst.read_bytes()


def change_tempo(seg: AudioSegment, factor: float) -> AudioSegment:
    """Speed speech up or down without changing its pitch (ffmpeg ``atempo``)."""
    if not 0.25 <= factor <= 4.0:
        raise ValueError(f"tempo factor must be between 0.25 and 4.0, got {factor}")
    if abs(factor - 1.0) < 1e-3:
        return seg
    stages: list[str] = []
    remaining = factor
    while remaining > 2.0 or remaining < 0.5:  # one atempo stage accepts 0.5..2.0
        step = 2.0 if remaining > 2.0 else 0.5
        stages.append(f"atempo={step}")
        remaining /= step
    stages.append(f"atempo={remaining:.6f}")
    seg = seg.set_sample_width(2)
    with tempfile.TemporaryDirectory(prefix="loaphuong-tempo-") as tmp:
        dst = Path(tmp, "output.wav")
        _run_ffmpeg(
            [
                "-f", "s16le", "-ar", str(seg.frame_rate), "-ac", str(seg.channels), "-i", "pipe:0",
                "-af", ",".join(stages), "-c:a", "pcm_s16le", "-f", "wav", str(dst),
            ],
            stdin=seg.raw_data,
            what="change the tempo",
        )
        return AudioSegment(data=dst.read_bytes())  # from_wav(path) leaks its file handle


def _trim_silence(seg: AudioSegment) -> AudioSegment:
    threshold = seg.max_dBFS - SILENCE_BELOW_PEAK_DB
    start = _silence.detect_leading_silence(seg, silence_threshold=threshold, chunk_size=5)
    end = len(seg) - _silence.detect_leading_silence(seg.reverse(), silence_threshold=threshold, chunk_size=5)
    return seg[max(0, start - TRIM_PAD_MS) : min(len(seg), end + TRIM_PAD_MS)]


def _leveling_filters(seg: AudioSegment) -> tuple[str, list[str]]:
    """Single-pass levelling: gain towards TARGET_DBFS RMS, then a look-ahead limiter at the ceiling.

    Runs inside ffmpeg in floating point, so the gain never hard-clips 16-bit samples. Speech has a high
    crest factor; the limiter may shave up to MAX_LIMITING_DB off the peaks, beyond that the gain is
    reduced instead (and reported) so the limiter never audibly pumps.
    """
    notes: list[str] = []
    gain = TARGET_DBFS - seg.dBFS
    limiting = seg.max_dBFS + gain - PEAK_CEILING_DBFS
    if limiting > MAX_LIMITING_DB:
        held = limiting - MAX_LIMITING_DB
        notes.append(f"loudness held {held:.1f} dB below target to avoid heavy limiting")
        gain -= held
    ceiling = 10 ** (PEAK_CEILING_DBFS / 20)
    chain = (
        f"aformat=sample_fmts=dbl,volume={gain:.2f}dB,"
        f"alimiter=limit={ceiling:.4f}:attack=5:release=50:level=disabled:latency=1"
    )
    return chain, notes


def _master(
    seg: AudioSegment, *, lead_in_ms: int, tail_ms: int, bitrate: str
) -> tuple[bytes, int, list[str]]:
    if lead_in_ms < 0 or tail_ms < 0:
        raise ValueError("lead_in_ms and tail_ms must not be negative")
    seg = _to_mono16(seg)
    if seg.frame_count() == 0 or seg.max == 0:
        raise AudioError("audio is completely silent")
    speech = _trim_silence(seg)
    if len(speech) == 0:
        raise AudioError("audio contains no sound above the silence threshold")
    filters, notes = _leveling_filters(speech)
    rate = speech.frame_rate
    mastered = (
        AudioSegment.silent(duration=lead_in_ms, frame_rate=rate)
        + speech
        + AudioSegment.silent(duration=tail_ms, frame_rate=rate)
    )
    mp3 = _encode_mp3(mastered, bitrate=bitrate, filters=filters)
    # Verify: what the loudspeaker node will decode must be audio of the expected length.
    try:
        decoded = decode(mp3)
    except AudioError as exc:
        raise AudioError(f"encoded MP3 failed verification: {exc}") from exc
    if abs(len(decoded) - len(mastered)) > VERIFY_TOLERANCE_MS:
        raise AudioError(
            f"encoded MP3 failed verification: decodes to {len(decoded)} ms, expected {len(mastered)} ms"
        )
    if decoded.max == 0:
        raise AudioError("encoded MP3 failed verification: it decodes to silence")
    return mp3, len(decoded), notes


def prepare_for_broadcast(
    seg: AudioSegment, *, lead_in_ms: int = 600, bitrate: str = "64k", tail_ms: int = 300
) -> tuple[bytes, int]:
    """Make speech loudspeaker-ready; return ``(mp3_bytes, duration_ms)``.

    Mono, leading/trailing silence trimmed, ``lead_in_ms`` of silence prepended so the amplifier is
    awake before the first word, ``tail_ms`` appended so players that stop early do not cut the last
    word, levelled to about -18 dBFS RMS with a limiter at -1.5 dBFS, encoded to MP3 and verified by
    decoding it back. ``duration_ms`` is measured on the decoded MP3.
    """
    mp3, duration_ms, _ = _master(seg, lead_in_ms=lead_in_ms, tail_ms=tail_ms, bitrate=bitrate)
    return mp3, duration_ms


def render_speech(
    text: str,
    engines: Sequence[SpeechEngine],
    *,
    voice: str | None = None,
    speed: float = 1.0,
    lead_in_ms: int = 600,
    bitrate: str = "64k",
) -> RenderedAudio:
    """Synthesize ``text`` with the first working engine and master it for broadcast.

    ``warnings`` lists the engines that failed before one succeeded and any levelling compromise.
    Raises SpeechError when every engine fails, AudioError when the audio cannot be mastered.
    """
    from .tts import synthesize_with_fallback  # late import: tts itself depends on this module

    seg, engine, errors = synthesize_with_fallback(text, engines, voice=voice, speed=speed)
    mp3, duration_ms, notes = _master(seg, lead_in_ms=lead_in_ms, tail_ms=300, bitrate=bitrate)
    return RenderedAudio(
        data=mp3, duration_ms=duration_ms, engine=engine, warnings=tuple([*errors, *notes])
    )
