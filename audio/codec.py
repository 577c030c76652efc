"""The lowest layer of the audio package: pydub's AudioSegment, the bundled ffmpeg, and WAV/MP3 in and out.

Everything else in ``audio/`` that touches sound builds on this module and it imports nothing of the package,
so the imports go one way::

    codec  ←  chimes, tts  ←  processing (measurement, mastering)  ←  render (cache keys, CLI)
    codec  ←  upload (recordings)  ←  render

imageio-ffmpeg ships ffmpeg but no ffprobe, so nothing here lets pydub probe a file: decoding runs ffmpeg
ourselves into a WAV file, which pydub then reads in pure Python (:func:`read_wav`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg

# pydub warns at import time when no ffmpeg is on PATH; we always point it at our own binary.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment

__all__ = [
    "FFMPEG_TIMEOUT_S",
    "SAMPLE_RATE",
    "AudioError",
    "AudioSegment",
    "change_tempo",
    "decode",
    "encode_mp3",
    "ffmpeg_exe",
    "mp3_output",
    "pcm_input",
    "read_wav",
    "run_ffmpeg",
    "to_mono16",
]

#: Output sample rate. 44.1 kHz MPEG-1 Layer III is the most widely supported by hardware decoders.
SAMPLE_RATE = 44100
FFMPEG_TIMEOUT_S = 300.0


class AudioError(Exception):
    """Audio could not be decoded, processed or encoded."""


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $LOAPHUONG_FFMPEG, else the one bundled by imageio-ffmpeg.

    Also points pydub's ``AudioSegment.converter`` at it so pydub never looks for ffmpeg on PATH.
    """
    exe = os.environ.get("LOAPHUONG_FFMPEG") or imageio_ffmpeg.get_ffmpeg_exe()
    AudioSegment.converter = exe
    return exe


def run_ffmpeg(
    args: Sequence[str], *, stdin: bytes | None = None, what: str, loglevel: str = "error"
) -> subprocess.CompletedProcess:
    """Run ffmpeg with ``args`` (quiet, overwrite, no stdin unless ``stdin`` is piped in) under a timeout.

    Any failure — missing binary, timeout, non-zero exit — becomes an AudioError naming ``what`` was tried and
    the last lines ffmpeg printed. ``loglevel="info"`` when the caller parses ffmpeg's report on stderr.
    """
    exe = ffmpeg_exe()
    cmd = [exe, "-hide_banner", "-nostats", "-loglevel", loglevel, "-y"]
    cmd += [*(["-nostdin"] if stdin is None else []), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise AudioError(f"ffmpeg not found at {exe!r} (set LOAPHUONG_FFMPEG)") from exc
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"ffmpeg timed out after {FFMPEG_TIMEOUT_S:.0f} s while trying to {what}") from exc
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = [ln for ln in lines if not ln.startswith(" ")][-3:] or lines[-3:]
        raise AudioError(f"ffmpeg could not {what}: {' | '.join(detail) or f'exit code {proc.returncode}'}")
    return proc


def pcm_input(seg: AudioSegment) -> list[str]:
    """ffmpeg input arguments for mono 16-bit ``seg`` piped in raw (``stdin=seg.raw_data``)."""
    return ["-f", "s16le", "-ar", str(seg.frame_rate), "-ac", "1", "-i", "pipe:0"]


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
        run_ffmpeg(
            ["-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn"] + ["-c:a", "pcm_s16le", "-f", "wav", str(dst)],
            what="decode the audio data",
        )
        seg = read_wav(dst)
    if seg.frame_count() == 0:
        raise AudioError("audio data decoded to zero samples")
    return seg


def read_wav(path: Path) -> AudioSegment:
    """Read a WAV file that ffmpeg wrote; a malformed one raises AudioError."""
    try:
        return AudioSegment(data=path.read_bytes())  # from_wav(path) leaks its file handle
    except Exception as exc:  # pydub raises assorted errors on a malformed WAV
        raise AudioError(f"decoded WAV is unreadable: {exc}") from exc


def to_mono16(seg: AudioSegment) -> AudioSegment:
    """``seg`` as mono 16-bit, the one format the chain measures and encodes."""
    return seg.set_channels(1).set_sample_width(2)


def encode_mp3(seg: AudioSegment, bitrate: str = "64k") -> bytes:
    """Encode as mono 44.1 kHz constant-bitrate MP3 with a LAME/Xing header (exact length, gapless)."""
    seg = to_mono16(seg)
    with tempfile.TemporaryDirectory(prefix="loaphuong-enc-") as tmp:
        dst = Path(tmp, "output.mp3")
        run_ffmpeg([*pcm_input(seg), *mp3_output(bitrate, dst)], stdin=seg.raw_data, what="encode MP3")
        return dst.read_bytes()


def mp3_output(bitrate: str, dst: Path) -> list[str]:
    """ffmpeg output arguments: mono constant-bitrate MP3 at SAMPLE_RATE without metadata, written to ``dst``."""
    return [
        "-ar", str(SAMPLE_RATE), "-ac", "1", "-c:a", "libmp3lame", "-b:a", bitrate,
        "-map_metadata", "-1", "-f", "mp3", str(dst),
    ]  # fmt: skip


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
        run_ffmpeg(
            [
                "-f", "s16le", "-ar", str(seg.frame_rate), "-ac", str(seg.channels), "-i", "pipe:0",
                "-af", ",".join(stages), "-c:a", "pcm_s16le", "-f", "wav", str(dst),
            ],
            stdin=seg.raw_data,
            what="change the tempo",
        )  # fmt: skip
        return read_wav(dst)
