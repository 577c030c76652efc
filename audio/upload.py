"""Recorded audio uploaded by an officer: validated by decoding it, never by its name.

:func:`validate_upload` accepts what browsers and phones produce - MP3, WAV, M4A/AAC, Ogg (Opus, Vorbis),
WebM/Opus from a browser's MediaRecorder (which writes no duration in the header) - and refuses with an
:class:`UploadError` carrying a machine code and a message in Vietnamese and English:

========== ======================================================================
code       meaning
========== ======================================================================
empty      no bytes at all
too_large  more than ``max_bytes`` (default 30 MB), refused before ffmpeg runs
not_audio  ffmpeg does not recognise it as a media file with an audio stream
corrupt    recognised, but decoding reports errors or the file is truncated
too_long   longer than ``max_duration_ms`` (default 30 min); the header's duration is checked before
           anything is decoded, and decoding stops one second past the limit when the header has none
silent     decodes to silence
========== ======================================================================

The decoded audio then goes through the same broadcast chain as speech (:func:`audio.render.process_recording`).
"""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .codec import FFMPEG_TIMEOUT_S, AudioError, AudioSegment, ffmpeg_exe, read_wav

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_DURATION_MS",
    "UPLOAD_SAMPLE_RATE",
    "UploadError",
    "probe",
    "validate_upload",
]

MAX_UPLOAD_BYTES = 30 * 1024 * 1024
MAX_UPLOAD_DURATION_MS = 30 * 60 * 1000
#: Recordings are decoded to mono at this rate: speech-grade (12 kHz bandwidth, beyond what horn
#: loudspeakers reproduce) and half the memory of 48 kHz for a 30-minute file.
UPLOAD_SAMPLE_RATE = 24000
#: Decoded audio may fall short of the header's duration by this much before the file counts as truncated.
TRUNCATION_TOLERANCE_MS = 500
#: Peak below this is "silence".
SILENCE_DBFS = -60.0


class UploadError(AudioError):
    """An uploaded file was refused. ``str(exc)`` is the Vietnamese message."""

    def __init__(self, code: str, message_vi: str, message_en: str) -> None:
        message_vi, message_en = " ".join(message_vi.split()), " ".join(message_en.split())
        super().__init__(message_vi)
        self.code = code
        self.message_vi = message_vi
        self.message_en = message_en

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message_vi": self.message_vi, "message_en": self.message_en}


@dataclass(frozen=True)
class ProbeInfo:
    """What ffmpeg's header probe (``ffmpeg -i``) says about a file."""

    format: str | None
    audio_codec: str | None
    duration_ms: int | None  # None: the header does not say (live WebM, raw streams)
    low_score: bool  # the format was guessed with low confidence
    error: str | None  # ffmpeg could not open it at all


_INPUT_RE = re.compile(r"^Input #0, ([^,]+(?:,[^,\s]+)*), from", re.M)
_AUDIO_RE = re.compile(r"Stream #0:\d+.*?: Audio: (\w+)")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


def probe(path: Path) -> ProbeInfo:
    """Read the container header only (cheap: no decoding) with ``ffmpeg -i``; ffprobe is not needed."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    text = proc.stderr.decode("utf-8", "replace")
    fmt = _INPUT_RE.search(text)
    audio = _AUDIO_RE.search(text)
    duration = _DURATION_RE.search(text)
    duration_ms = None
    if duration:
        h, m, s = duration.groups()
        duration_ms = round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)
    error = None
    if fmt is None:
        lines = [ln.strip() for ln in text.splitlines() if "rror" in ln or "nvalid" in ln]
        error = lines[-1] if lines else "unrecognised file"
        if "moov atom not found" in text:
            error = "moov atom not found"
    return ProbeInfo(
        format=fmt.group(1) if fmt else None,
        audio_codec=audio.group(1) if audio else None,
        duration_ms=duration_ms,
        low_score="misdetection possible" in text,
        error=error,
    )


def _minutes_vi(ms: int) -> str:
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} giây"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} phút" + (f" {rest} giây" if rest and minutes < 10 else "")


def _minutes_en(ms: int) -> str:
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min" + (f" {rest} s" if rest and minutes < 10 else "")


def _megabytes(n: int, decimal: str) -> str:
    """``31,5 MB`` / ``31.5 MB``; sizes under 1 MB in kB so a small limit never reads "0,0 MB"."""
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} kB"
    value = n / (1024 * 1024)
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return text.replace(".", decimal) + " MB"


def _too_long(name: str, duration_ms: int, limit_ms: int, *, at_least: bool = False) -> UploadError:
    more = "hơn " if at_least else ""
    more_en = "more than " if at_least else ""
    return UploadError(
        "too_long",
        f"Tệp âm thanh {name} dài {more}{_minutes_vi(duration_ms)}, vượt giới hạn {_minutes_vi(limit_ms)}",
        f"The audio file {name} lasts {more_en}{_minutes_en(duration_ms)}, over the {_minutes_en(limit_ms)} limit",
    )


def _not_audio(name: str, detail: str) -> UploadError:
    return UploadError(
        "not_audio",
        f"Tệp {name} không phải âm thanh hợp lệ",
        f"The file {name} is not valid audio ({detail})",
    )


def _corrupt(name: str, detail: str) -> UploadError:
    return UploadError(
        "corrupt",
        f"Tệp âm thanh {name} bị hỏng hoặc không đầy đủ (tải lên bị gián đoạn?)",
        f"The audio file {name} is damaged or incomplete ({detail})",
    )


def _wav_truncation(data: bytes) -> str | None:
    """A RIFF/WAVE file whose data chunk claims more bytes than the file holds is truncated."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk_id == b"data":
            if size in (0, 0xFFFFFFFF):  # written by a streaming recorder: size unknown
                return None
            available = len(data) - pos - 8
            if size > available + 1:
                return f"WAV data chunk declares {size} bytes, the file holds {available}"
            return None
        pos += 8 + size + (size & 1)
    return "WAV file without a complete data chunk"


_MP3_BITRATES = {  # kbit/s by (MPEG-1?, layer) and bitrate index 1-14
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_TRAILERS = (b"TAG", b"APETAGEX", b"LYRICS")


def _mp3_frame_length(header: bytes) -> int | None:
    """Length in bytes of the MPEG audio (layer II/III) frame starting with ``header``, None if not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, 4 - ((header[1] >> 1) & 3)  # layer bits 01 = III, 10 = II
    bitrate_index, rate_index, padding = header[2] >> 4, (header[2] >> 2) & 3, (header[2] >> 1) & 1
    if version == 1 or layer not in (2, 3) or not 1 <= bitrate_index <= 14 or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _MP3_BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _MP3_RATES[version][rate_index]
    factor = 144 if mpeg1 or layer == 2 else 72
    return factor * bitrate // rate + padding


def _mp3_truncation(data: bytes) -> str | None:
    """An MP3 whose last frame is cut short was truncated (an interrupted upload).

    Needed because an MP3 without a Xing/LAME frame count (streamed encoders, some phones) announces a
    duration estimated from its size, so a truncated copy otherwise looks like a shorter, complete file.
    Returns None whenever the stream is not plain frames to the end (unknown trailer: no verdict).
    """
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = data[6:10]
        pos = 10 + ((size[0] & 0x7F) << 21 | (size[1] & 0x7F) << 14 | (size[2] & 0x7F) << 7 | (size[3] & 0x7F))
        pos += 10 if data[5] & 0x10 else 0  # footer
    frames = 0
    while pos < len(data):
        if data.startswith(_MP3_TRAILERS, pos):
            return None
        length = _mp3_frame_length(data[pos : pos + 4])
        if length is None:
            return None  # not (or no longer) a plain frame sequence: let ffmpeg judge
        if pos + length > len(data):
            if frames == 0:
                return None
            return f"the last MP3 frame has {len(data) - pos} of its {length} bytes"
        pos += length
        frames += 1
    return None


def _ogg_truncation(data: bytes) -> str | None:
    """An Ogg file (Vorbis, Opus: Firefox and Android recorders) whose last page is cut short or that
    never reaches an end-of-stream page was truncated. Ogg keeps no total length in its headers, so
    ffmpeg reports the truncated length as the duration and decodes without complaint."""
    if not data.startswith(b"OggS"):
        return None
    pos, open_streams, pages = 0, set(), 0
    while pos < len(data):
        if not data.startswith(b"OggS", pos):
            return None  # not plain pages to the end (trailing junk): no verdict
        if pos + 27 > len(data):
            return "the last Ogg page header is cut short"
        flags, serial, count = data[pos + 5], data[pos + 14 : pos + 18], data[pos + 26]
        if pos + 27 + count > len(data):
            return "the last Ogg page header is cut short"
        length = 27 + count + sum(data[pos + 27 : pos + 27 + count])
        if pos + length > len(data):
            return f"the last Ogg page has {len(data) - pos} of its {length} bytes"
        if flags & 0x02:
            open_streams.add(serial)
        if flags & 0x04:
            open_streams.discard(serial)
        pos += length
        pages += 1
    if open_streams:
        return f"the Ogg stream ends after {pages} pages without its end-of-stream page"
    return None


def validate_upload(
    data: bytes,
    filename: str = "",
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_duration_ms: int = MAX_UPLOAD_DURATION_MS,
) -> AudioSegment:
    """Decode an uploaded recording to mono 16-bit PCM at 24 kHz, or raise :class:`UploadError`.

    ``filename`` only names the file in messages: the format is recognised from the content.
    """
    name = f"“{Path(filename).name}”" if filename and Path(filename).name else ""
    if not data:
        raise UploadError("empty", f"Tệp {name} rỗng, không có dữ liệu âm thanh", f"The file {name} is empty")
    if len(data) > max_bytes:
        raise UploadError(
            "too_large",
            f"Tệp {name} quá lớn: {_megabytes(len(data), ',')}, giới hạn {_megabytes(max_bytes, ',')}",
            f"The file {name} is too large: {_megabytes(len(data), '.')}, limit {_megabytes(max_bytes, '.')}",
        )
    truncated_wav = _wav_truncation(data)
    if truncated_wav:
        raise _corrupt(name, truncated_wav)
    with tempfile.TemporaryDirectory(prefix="loaphuong-upload-") as tmp:
        src, dst = Path(tmp, "upload"), Path(tmp, "decoded.wav")
        src.write_bytes(data)
        info = probe(src)
        if info.error == "moov atom not found":
            raise _corrupt(name, "MP4/M4A index (moov atom) missing")
        if info.error and info.error.endswith("End of file"):  # a container cut off inside its headers
            raise _corrupt(name, info.error)
        if info.format == "mp3" and (truncated_mp3 := _mp3_truncation(data)):
            raise _corrupt(name, truncated_mp3)
        if info.format == "ogg" and (truncated_ogg := _ogg_truncation(data)):
            raise _corrupt(name, truncated_ogg)
        if info.error or info.low_score:
            raise _not_audio(name, info.error or "format guessed with low confidence")
        if info.audio_codec is None:
            raise _not_audio(name, f"{info.format} without an audio stream")
        if info.duration_ms is not None and info.duration_ms > max_duration_ms:
            raise _too_long(name, info.duration_ms, max_duration_ms)
        limit_s = (max_duration_ms + 1000) / 1000
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
            "-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn", "-t", f"{limit_s:.3f}",
            "-ac", "1", "-ar", str(UPLOAD_SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", str(dst),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise _corrupt(name, "decoding took too long") from exc
        errors = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        if proc.returncode != 0 or not dst.is_file():
            raise _corrupt(name, errors[-1] if errors else f"ffmpeg exit code {proc.returncode}")
        if errors:
            raise _corrupt(name, errors[-1])
        seg = read_wav(dst)
    decoded_ms = len(seg)
    if decoded_ms == 0:
        raise _corrupt(name, "no audio samples")
    if decoded_ms > max_duration_ms:
        raise _too_long(name, decoded_ms, max_duration_ms, at_least=True)
    if info.duration_ms is not None and decoded_ms < info.duration_ms - TRUNCATION_TOLERANCE_MS:
        raise _corrupt(name, f"the header says {info.duration_ms} ms, only {decoded_ms} ms decode")
    if seg.max == 0 or seg.max_dBFS < SILENCE_DBFS:
        raise UploadError(
            "silent",
            f"Tệp âm thanh {name} chỉ có im lặng, không nghe thấy tiếng",
            f"The audio file {name} contains only silence",
        )
    return seg
