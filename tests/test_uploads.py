"""Recorded uploads: real files made by ffmpeg in every format a browser or phone sends, and broken ones."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from audio import UploadError, ffmpeg_exe, process_recording, validate_upload
from audio.upload import UPLOAD_SAMPLE_RATE

VOICE_LIKE = "sine=frequency=220:duration={d},volume=0.5"
#: (ffmpeg output options, file extension) — written to a real file, as a recorder would.
FORMATS = {
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
    "wav": (["-c:a", "pcm_s16le"], "wav"),
    "m4a": (["-c:a", "aac", "-b:a", "64k"], "m4a"),
    "ogg": (["-c:a", "libvorbis"], "ogg"),
    "opus": (["-c:a", "libopus", "-b:a", "32k"], "opus"),
    "webm": (["-c:a", "libopus", "-b:a", "32k", "-f", "webm"], "webm"),  # MediaRecorder in Chrome/Firefox
}


def make(tmp: Path, fmt: str, seconds: float = 3.0, stereo: bool = True, streamed: bool = False) -> bytes:
    options, ext = FORMATS[fmt]
    src = ["-f", "lavfi", "-i", VOICE_LIKE.format(d=seconds)]
    channels = ["-ac", "2"] if stereo else ["-ac", "1"]
    if streamed:  # to a pipe: no seeking back, so no duration/frame count in the header
        fmt_name = {"mp3": "mp3", "ogg": "ogg", "webm": "webm", "wav": "wav"}[fmt]
        out = [*options, "-f", fmt_name, "pipe:1"] if "-f" not in options else [*options, "pipe:1"]
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *src, *channels, *out],
                              capture_output=True, timeout=120, check=True)
        return proc.stdout
    path = tmp / f"rec-{fmt}-{seconds}.{ext}"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *src, *channels, *options, str(path)],
                   capture_output=True, timeout=120, check=True)
    return path.read_bytes()


def refused(data: bytes, name: str = "ghi-am.mp3", **limits: int) -> UploadError:
    with pytest.raises(UploadError) as info:
        validate_upload(data, name, **limits)
    err = info.value
    assert str(err) == err.message_vi
    assert re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", err.message_vi.lower()), err.message_vi
    assert name in err.message_vi, "the message names the file the officer chose"
    assert err.to_dict()["code"] == err.code
    return err


# ------------------------------------------------------------------------------------------ accepted


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_browser_and_phone_format_is_accepted(tmp_path: Path, fmt: str) -> None:
    seg = validate_upload(make(tmp_path, fmt), f"ghi-am.{FORMATS[fmt][1]}")
    assert seg.channels == 1 and seg.frame_rate == UPLOAD_SAMPLE_RATE and seg.sample_width == 2
    assert abs(len(seg) - 3000) <= 80, len(seg)


@pytest.mark.parametrize("fmt", ["mp3", "webm", "ogg"])
def test_streamed_recordings_without_duration_in_the_header(tmp_path: Path, fmt: str) -> None:
    seg = validate_upload(make(tmp_path, fmt, streamed=True), "live")
    assert abs(len(seg) - 3000) <= 80


def test_format_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    seg = validate_upload(make(tmp_path, "ogg"), "recording.mp3")  # misnamed, still audio
    assert abs(len(seg) - 3000) <= 80
    err = refused(b"%PDF-1.7\n" + os.urandom(4000), "thong-bao.mp3")  # named .mp3, is not audio
    assert err.code == "not_audio"


def test_recording_goes_through_the_broadcast_chain(tmp_path: Path) -> None:
    data = make(tmp_path, "webm", seconds=4)
    result = process_recording(data, "ghi-am.webm")
    assert result.engine == "upload" and result.data and not result.cached
    assert result.loudness is not None
    assert -17 <= result.loudness.integrated_lufs <= -15 and result.loudness.true_peak_dbtp <= -1
    assert abs(result.duration_ms - (600 + 4000 + 300)) <= 150
    again = process_recording(data, "x.webm", cache={result.key: result.sha256})
    assert again.cached and again.data is None


# ------------------------------------------------------------------------------------------ refused


@pytest.mark.parametrize(
    "payload",
    [
        "Xin chào, đây là văn bản chứ không phải âm thanh. ".encode() * 80,
        b"%PDF-1.4\n" + b"0" * 5000,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 4000,
        b"<!DOCTYPE html><html><body>Error</body></html>" * 40,
        b"MZ\x90\x00" + bytes(range(256)) * 20,
        bytes(range(256)) * 40,
    ],
    ids=["text", "pdf", "png", "html", "exe", "bytes"],
)
def test_non_audio_is_refused(payload: bytes) -> None:
    err = refused(payload)
    assert err.code == "not_audio"
    assert "không phải âm thanh" in err.message_vi


def test_random_bytes_are_refused() -> None:
    for _ in range(5):
        assert refused(os.urandom(30_000)).code in ("not_audio", "corrupt")


def test_video_without_sound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=64x64:d=1", "-c:v", "libvpx", str(path)], check=True, capture_output=True)
    err = refused(path.read_bytes(), "clip.webm")
    assert err.code == "not_audio"


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_refused(tmp_path: Path, fmt: str, keep: float) -> None:
    """An upload cut off by a dropped connection: half the file, or all but the last tenth."""
    data = make(tmp_path, fmt, seconds=6)
    err = refused(data[: int(len(data) * keep)], f"ghi-am.{FORMATS[fmt][1]}")
    assert err.code == "corrupt", (err.code, err.message_en)
    assert "bị hỏng hoặc không đầy đủ" in err.message_vi


def test_truncated_streamed_mp3_is_refused(tmp_path: Path) -> None:
    """No Xing header: the duration is guessed from the size, only the cut last frame gives it away."""
    data = make(tmp_path, "mp3", seconds=6, streamed=True)
    assert refused(data[: len(data) // 2 + 7]).code == "corrupt"


def test_ogg_cut_exactly_at_a_page_boundary_is_refused(tmp_path: Path) -> None:
    """Every page is complete, but the end-of-stream page never arrived."""
    data = make(tmp_path, "opus", seconds=6)
    boundary = data.rfind(b"OggS", 0, len(data) // 2)
    assert boundary > 0
    err = refused(data[:boundary], "ghi-am.opus")
    assert err.code == "corrupt" and "end-of-stream" in err.message_en


def test_forty_minute_recording_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.mp3"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "2400", "-c:a", "libmp3lame", "-b:a", "8k", str(path)],
                   check=True, capture_output=True, timeout=120)
    err = refused(path.read_bytes(), "long.mp3")
    assert err.code == "too_long"
    assert err.message_vi == "Tệp âm thanh “long.mp3” dài 40 phút, vượt giới hạn 30 phút"


def test_long_streamed_recording_is_refused_while_decoding(tmp_path: Path) -> None:
    """A browser recording declares no duration: decoding stops just past the limit."""
    data = make(tmp_path, "webm", seconds=75, streamed=True)
    err = refused(data, "live.webm", max_duration_ms=60_000)
    assert err.code == "too_long" and "dài hơn 1 phút" in err.message_vi


def test_oversize_file_is_refused_before_decoding(tmp_path: Path) -> None:
    data = make(tmp_path, "wav", seconds=3)
    err = refused(data, "to.wav", max_bytes=100_000)
    assert err.code == "too_large"
    assert "quá lớn" in err.message_vi and "giới hạn 98 kB" in err.message_vi
    big = refused(b"\0" * (31 * 1024 * 1024), "to.wav")
    assert big.code == "too_large" and "31 MB, giới hạn 30 MB" in big.message_vi


def test_empty_and_silent_files_are_refused(tmp_path: Path) -> None:
    assert refused(b"", "rong.wav").code == "empty"
    path = tmp_path / "im-lang.wav"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=16000:cl=mono", "-t", "3", str(path)], check=True, capture_output=True)
    err = refused(path.read_bytes(), "im-lang.wav")
    assert err.code == "silent" and "im lặng" in err.message_vi


def test_process_recording_refuses_with_the_same_errors() -> None:
    with pytest.raises(UploadError) as info:
        process_recording(b"not audio at all" * 100, "x.m4a")
    assert info.value.code == "not_audio"
