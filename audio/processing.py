"""Broadcast mastering with the bundled ffmpeg: decode, trim, chime, level to a loudness target, encode, verify.

Built on :mod:`audio.codec` (ffmpeg, WAV/MP3 in and out), :mod:`audio.chimes` and, for :func:`render_speech`,
:mod:`audio.tts`; none of them imports this module.

The chain (:func:`master_audio`), for speech of 1 s to 10 min and any recording:

1. mono, leading/trailing silence trimmed (a little padding kept so soft onsets survive);
2. **pass 1 — measure** the speech (EBU R128: integrated loudness, loudness range, gating threshold, true
   peak) with ffmpeg's ``ebur128`` filter. This is the same measurement ``loudnorm``'s own first pass makes
   (``print_format=json``) but about seven times faster, because ``loudnorm`` upsamples to 192 kHz while it
   measures; ``FIRST_PASS = "loudnorm"`` switches back to it (see docs/performance.md);
3. if the speech is too peaky to reach the target linearly (peak-to-loudness ratio above what the
   target and the true-peak ceiling allow — typical of synthetic speech), a look-ahead limiter shaves the
   peaks; its ceiling is found by measuring again (secant search, usually one extra pass);
4. intro/outro chimes are loudness-matched to the speech and the bulletin is laid out: lead-in silence,
   chime, speech, chime; repeated N times with a gap; a short tail;
5. **pass 2** — loudnorm's linear mode with the ``measured_*`` values (one exact gain, no dynamic
   processing: applied as ``volume`` when linear mode applies, else ``loudnorm`` itself), resampled to
   44.1 kHz and encoded to mono CBR MP3 in the same ffmpeg run;
6. **verify** — the MP3 is decoded back and measured with ``ebur128=peak=true``. Length, integrated
   loudness (target ±1 LU) and true peak (≤ ceiling, −1 dBTP by default) are checked *after* encoding;
   if the encoder moved the level or the peaks, the aims are corrected (gain by the error, true-peak aim
   lowered by the overshoot plus a margin) and steps 3–6 run again (at most four attempts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydub import silence

from .chimes import chime_segment
from .codec import (
    SAMPLE_RATE,
    AudioError,
    AudioSegment,
    change_tempo,
    decode,
    encode_mp3,
    ffmpeg_exe,
    mp3_output,
    pcm_input,
    read_wav,
    run_ffmpeg,
    to_mono16,
)
from .tts import SpeechEngine, synthesize_with_fallback

log = logging.getLogger(__name__)

__all__ = [
    "AudioError",
    "AudioSegment",
    "ChainSettings",
    "Loudness",
    "Mastered",
    "RenderedAudio",
    "change_tempo",
    "decode",
    "encode_mp3",
    "ffmpeg_exe",
    "master_audio",
    "measure_loudness",
    "prepare_for_broadcast",
    "render_speech",
]

#: Speech is "silence" when quieter than this many dB below its own peak.
SILENCE_BELOW_PEAK_DB = 45.0
#: Silence kept before the first / after the last detected sound, so soft onsets are not chopped.
TRIM_PAD_MS = 30
#: The decoded MP3 may differ from the planned length by at most this much.
VERIFY_TOLERANCE_MS = 150

#: Guaranteed: the encoded MP3 measures within this many LU of the target.
LOUDNESS_TOLERANCE_LU = 1.0
#: Re-encode when the MP3 lands farther than this from the target (keeps a margin inside the guarantee).
AIM_TOLERANCE_LU = 0.5
#: LAME at 64-128 kbit/s measures this much quieter than its input (measured: 0.4-0.5 LU on speech and
#: sine tones); the first attempt aims this much higher.
MP3_LOSS_LU = 0.45
#: The first attempt aims the pre-encode true peak this far below the ceiling (MP3 overshoot room).
TRUE_PEAK_MARGIN_DB = 0.5
#: Working level of the speech while the bulletin is laid out (16-bit headroom for chimes and peaks).
REFERENCE_LUFS = -24.0
#: ``"ebur128"`` (fast) or ``"loudnorm"`` (its own JSON first pass, 192 kHz, slower): how pass 1 measures.
FIRST_PASS = "ebur128"
#: Silence between a chime and the speech.
CHIME_GAP_MS = 250
#: Bumped whenever the chain's output for the same input changes: part of every cache key.
CHAIN_VERSION = 2

_BITRATES = ("32k", "40k", "48k", "56k", "64k", "80k", "96k", "112k", "128k", "160k", "192k")
_MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class Loudness:
    """EBU R128 measurement: integrated loudness (LUFS), true peak (dBTP) and loudness range (LU).

    ``threshold_lufs`` is the relative gating threshold, ``duration_ms`` the length that was measured.
    A silent input measures ``-70`` LUFS and ``-inf`` dBTP.
    """

    integrated_lufs: float
    true_peak_dbtp: float
    lra: float
    threshold_lufs: float = -70.0
    duration_ms: int | None = None

    @property
    def peak_to_loudness(self) -> float:
        return self.true_peak_dbtp - self.integrated_lufs

    def shifted(self, gain_db: float) -> Loudness:
        """The measurement of the same audio after a linear gain."""
        return Loudness(
            self.integrated_lufs + gain_db, self.true_peak_dbtp + gain_db, self.lra,
            self.threshold_lufs + gain_db, self.duration_ms,
        )  # fmt: skip


@dataclass(frozen=True)
class RenderedAudio:
    """Broadcast-ready audio: MP3 bytes and the duration measured by decoding them back."""

    data: bytes
    duration_ms: int
    engine: str
    content_type: str = "audio/mpeg"
    warnings: tuple[str, ...] = ()
    loudness: Loudness | None = None


@dataclass(frozen=True)
class Mastered:
    """Output of :func:`master_audio`: the verified MP3 and what was measured on it."""

    data: bytes
    duration_ms: int
    loudness: Loudness
    speech_ms: int  # trimmed speech (or recording) length, once
    warnings: tuple[str, ...] = ()
    attempts: int = 1


@dataclass(frozen=True)
class ChainSettings:
    """Everything that shapes the broadcast file; two equal settings give the same audio for the same text.

    ``engine_order`` accepts ``"gtts,espeak"`` or a sequence of names and is stored as a tuple. ``voice``
    and ``speed`` go to the speech engine (``None``: the engine's default voice). ``emergency`` uses the
    urgent chime instead of the station chimes.
    """

    lead_in_ms: int = 600
    target_lufs: float = -16.0
    true_peak_db: float = -1.0
    bitrate: str = "64k"
    intro_chime: bool = False
    outro_chime: bool = False
    repeat: int = 1
    gap_ms: int = 3000
    voice: str | None = None
    speed: float = 1.0
    engine_order: tuple[str, ...] = ("gtts", "espeak")
    emergency: bool = False
    tail_ms: int = 300
    #: The longest bulletin the chain makes (speech × repeat, gaps and chimes included): a 5,000-character text
    #: read at half speed ten times with minute-long gaps would be hours of audio, minutes of CPU and memory.
    max_total_ms: int = 15 * 60_000

    def __post_init__(self) -> None:
        order = self.engine_order
        if isinstance(order, str):
            order = order.split(",")
        order = tuple(dict.fromkeys(n.strip().lower() for n in order if n and n.strip()))
        object.__setattr__(self, "engine_order", order)
        object.__setattr__(self, "target_lufs", float(self.target_lufs))
        object.__setattr__(self, "true_peak_db", float(self.true_peak_db))
        object.__setattr__(self, "speed", float(self.speed))
        checks = [
            (0 <= self.lead_in_ms <= 10_000, "lead_in_ms must be 0-10000"),
            (-30.0 <= self.target_lufs <= -10.0, "target_lufs must be between -30 and -10 LUFS"),
            (-9.0 <= self.true_peak_db <= 0.0, "true_peak_db must be between -9 and 0 dBTP"),
            (self.true_peak_db - self.target_lufs >= 6.0, "true_peak_db must be at least 6 dB above target_lufs"),
            (self.bitrate in _BITRATES, f"bitrate must be one of {', '.join(_BITRATES)}"),
            (1 <= self.repeat <= 10, "repeat must be 1-10"),
            (0 <= self.gap_ms <= 60_000, "gap_ms must be 0-60000"),
            (0.5 <= self.speed <= 2.0, "speed must be between 0.5 and 2.0"),
            (0 <= self.tail_ms <= 5_000, "tail_ms must be 0-5000"),
            (60_000 <= self.max_total_ms <= 4 * 3600_000, "max_total_ms must be 1 min-4 h"),
            (bool(order), "engine_order must name at least one engine"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def intro_kind(self) -> str | None:
        return ("emergency" if self.emergency else "intro") if self.intro_chime else None

    @property
    def outro_kind(self) -> str | None:
        return ("emergency" if self.emergency else "outro") if self.outro_chime else None

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["engine_order"] = list(self.engine_order)
        return data

    def cache_key(self, text: str | None = None) -> str:
        """SHA-256 (hex) of the chain version, these settings and, if given, the (normalised) text.

        Use :func:`audio.render.announcement_key` for announcements: it normalises the text first.
        """
        payload = {"chain": CHAIN_VERSION, "settings": self.as_dict(), "text": text}
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------- measure


_NUM = r"(-?inf|-?nan|-?\d+(?:\.\d+)?)"
_TIME_RE = re.compile(r"time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")


def _parse_ebur128(stderr: str) -> Loudness:
    summary = stderr.rsplit("Summary:", 1)
    if len(summary) != 2:
        raise AudioError("ffmpeg printed no loudness summary")
    text = summary[1]

    def grab(pattern: str) -> float:
        match = re.search(pattern, text)
        if not match:
            raise AudioError(f"unexpected ebur128 summary: {' '.join(text.split())[:200]}")
        value = float(match.group(1))
        return -math.inf if math.isnan(value) else value

    integrated = grab(rf"I:\s+{_NUM} LUFS")
    threshold = grab(rf"Integrated loudness:\s+I:\s+\S+ LUFS\s+Threshold:\s+{_NUM} LUFS")
    lra = grab(rf"LRA:\s+{_NUM} LU")
    peak = grab(rf"Peak:\s+{_NUM} dBFS")
    times = _TIME_RE.findall(stderr)
    duration_ms = None
    if times:
        h, m, s = times[-1]
        duration_ms = round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)
    return Loudness(integrated, peak, lra, threshold, duration_ms)


def _measure_segment(seg: AudioSegment, filters: str = "", out: Path | None = None) -> Loudness:
    """EBU R128 of mono 16-bit ``seg`` after ``filters``; optionally write the filtered audio as WAV."""
    chain = f"{filters}," if filters else ""
    if FIRST_PASS == "loudnorm" and out is None and not filters:
        return _measure_with_loudnorm(seg)
    output = ["-c:a", "pcm_s16le", "-f", "wav", str(out)] if out else ["-f", "null", "-"]
    proc = run_ffmpeg(
        [*pcm_input(seg), "-af", f"{chain}ebur128=peak=true:framelog=quiet", *output],
        stdin=seg.raw_data, what="measure loudness", loglevel="info",
    )  # fmt: skip
    return _parse_ebur128(proc.stderr.decode("utf-8", "replace"))


def _loudnorm_json(stderr: str) -> dict[str, str]:
    blocks = re.findall(r"\{[^{}]*\"input_i\"[^{}]*\}", stderr)
    if not blocks:
        raise AudioError("ffmpeg loudnorm printed no statistics")
    return json.loads(blocks[-1])


def _measure_with_loudnorm(seg: AudioSegment) -> Loudness:
    """loudnorm's own first pass (``print_format=json``): same numbers as ebur128, runs at 192 kHz."""
    proc = run_ffmpeg(
        [*pcm_input(seg), "-af", "loudnorm=I=-16:TP=-1.5:LRA=11:print_format=json", "-f", "null", "-"],
        stdin=seg.raw_data, what="measure loudness", loglevel="info",
    )  # fmt: skip
    stats = _loudnorm_json(proc.stderr.decode("utf-8", "replace"))
    return Loudness(
        float(stats["input_i"]), float(stats["input_tp"]), float(stats["input_lra"]),
        float(stats["input_thresh"]), len(seg),
    )  # fmt: skip


def measure_loudness(data: bytes) -> Loudness:
    """Decode ``data`` (any format ffmpeg reads) and measure it with ``ebur128=peak=true``."""
    if not data:
        raise AudioError("cannot measure empty audio data")
    with tempfile.TemporaryDirectory(prefix="loaphuong-meas-") as tmp:
        src = Path(tmp, "input")
        src.write_bytes(data)
        return _measure_file(src)


def _measure_file(path: Path) -> Loudness:
    proc = run_ffmpeg(
        ["-i", str(path), "-map", "0:a:0", "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"],
        what="decode and measure the audio", loglevel="info",
    )  # fmt: skip
    return _parse_ebur128(proc.stderr.decode("utf-8", "replace"))


# ------------------------------------------------------------------------------------- basic tools


def trim_silence(seg: AudioSegment) -> AudioSegment:
    """Cut leading and trailing silence (quieter than 45 dB below the peak), keeping 30 ms of padding."""
    threshold = seg.max_dBFS - SILENCE_BELOW_PEAK_DB
    start = silence.detect_leading_silence(seg, silence_threshold=threshold, chunk_size=5)
    end = len(seg) - silence.detect_leading_silence(seg.reverse(), silence_threshold=threshold, chunk_size=5)
    return seg[max(0, start - TRIM_PAD_MS) : min(len(seg), end + TRIM_PAD_MS)]


# ------------------------------------------------------------------------------------------ levelling


#: Four first-order-like all-pass sections at 300 Hz: a "phase rotator" as used in broadcast processors.
#: Inaudible on speech, it makes the asymmetric glottal pulses of voice (and espeak's) more symmetric and
#: lowers the peak-to-loudness ratio by about 2 dB, so the limiter behind it barely has to work.
_PHASE_ROTATOR = ",".join(["allpass=f=300:t=q:w=0.7"] * 4)


def _shaper(pre_gain_db: float, ceiling_dbfs: float) -> str:
    ceiling = 10 ** (ceiling_dbfs / 20)
    return (
        f"aformat=sample_fmts=dbl,volume={pre_gain_db:.3f}dB,{_PHASE_ROTATOR},"
        f"alimiter=limit={ceiling:.6f}:attack=5:release=20:level=disabled:latency=1"
    )


def _shape_speech(
    speech: AudioSegment, raw: Loudness, allowed_plr: float, tmp: Path
) -> tuple[AudioSegment, Loudness, float | None]:
    """Bring ``speech`` to REFERENCE_LUFS with a peak-to-loudness ratio of at most ``allowed_plr``.

    Returns the shaped speech, its measurement and the limiter ceiling (None: a plain gain sufficed).
    Otherwise the speech goes through the phase rotator and a look-ahead limiter whose ceiling is found
    by measuring (secant method; limiting also lowers the loudness a little, so the ratio falls more
    slowly than the ceiling). On espeak speech the first guess is usually right.
    """
    pre = REFERENCE_LUFS - raw.integrated_lufs
    base = raw.shifted(pre)
    if base.peak_to_loudness <= allowed_plr:
        return speech.apply_gain(pre), base, None
    aim = allowed_plr - 0.15
    # First guess: the rotator takes ~1.5 dB off the peaks, limiting costs ~0.1 LU per dB, peaks
    # overshoot the (sample-peak) ceiling by ~0.3 dB between samples.
    k, overshoot = 0.1, 0.3
    ceiling = (aim + base.integrated_lufs - overshoot - k * (base.true_peak_dbtp - 1.5)) / (1 - k)
    out = tmp / "shaped.wav"
    previous: tuple[float, float] | None = None
    for _ in range(6):
        ceiling = max(ceiling, -23.5)  # alimiter's lowest ceiling is -24 dBFS
        shaped = _measure_segment(speech, _shaper(pre, ceiling), out)
        plr = shaped.peak_to_loudness
        log.debug(
            "limiter ceiling %.2f dBFS: %.1f LUFS, %.1f dBTP (ratio %.1f, allowed %.1f)",
            ceiling, shaped.integrated_lufs, shaped.true_peak_dbtp, plr, allowed_plr,
        )  # fmt: skip
        if plr <= allowed_plr:
            return read_wav(out), shaped, ceiling
        slope = 0.8
        if previous is not None and abs(ceiling - previous[0]) > 1e-6:
            slope = min(1.0, max(0.2, (plr - previous[1]) / (ceiling - previous[0])))
        previous = (ceiling, plr)
        ceiling -= (plr - aim) / slope
    raise AudioError(f"could not limit the peaks to {allowed_plr:.1f} dB above the loudness")


@dataclass
class _Layout:
    unit: AudioSegment  # [chime, gap,] speech [, gap, chime] and, when repeated, the repeat gap
    unit_samples: int
    gap_samples: int
    repeat: int
    lead_samples: int
    tail_samples: int
    peak_dbtp: float  # highest true peak in the unit, at working level
    rate: int = field(init=False)

    def __post_init__(self) -> None:
        self.rate = self.unit.frame_rate

    @property
    def total_ms(self) -> int:
        samples = self.lead_samples + self.repeat * self.unit_samples - self.gap_samples + self.tail_samples
        return round(samples * 1000 / self.rate)


_chime_loudness_cache: dict[tuple[str, int], Loudness] = {}


def _chime_loudness(kind: str, rate: int) -> Loudness:
    key = (kind, rate)
    if key not in _chime_loudness_cache:
        _chime_loudness_cache[key] = _measure_segment(chime_segment(kind, rate))
    return _chime_loudness_cache[key]


def _layout(speech: AudioSegment, level: Loudness, settings: ChainSettings) -> _Layout:
    rate = speech.frame_rate
    peak = level.true_peak_dbtp
    unit = speech
    for kind, before in ((settings.intro_kind, True), (settings.outro_kind, False)):
        if kind is None:
            continue
        measured = _chime_loudness(kind, rate)
        gain = level.integrated_lufs - measured.integrated_lufs  # as loud as the speech
        peak = max(peak, measured.true_peak_dbtp + gain)
        chime = chime_segment(kind, rate).apply_gain(gain)
        gap = AudioSegment.silent(CHIME_GAP_MS, frame_rate=rate)
        unit = chime + gap + unit if before else unit + gap + chime
    gap_samples = 0
    if settings.repeat > 1 and settings.gap_ms:
        gap = AudioSegment.silent(settings.gap_ms, frame_rate=rate)
        gap_samples = int(gap.frame_count())
        unit = unit + gap
    return _Layout(
        unit=unit,
        unit_samples=int(unit.frame_count()),
        gap_samples=gap_samples,
        repeat=settings.repeat,
        lead_samples=round(settings.lead_in_ms * rate / 1000),
        tail_samples=round(settings.tail_ms * rate / 1000),
        peak_dbtp=peak,
    )


def _encode_program(
    layout: _Layout, level: Loudness, aim_i: float, aim_tp: float, bitrate: str, tmp: Path
) -> tuple[Path, str]:
    """Lay the bulletin out and level it (loudnorm's second pass) and encode the MP3 in one ffmpeg run.

    When loudnorm's linear mode applies — the gain to the target keeps the measured true peak under the
    ceiling, which is what shaping the peaks beforehand is for — its result is that one gain; the same gain
    through ``volume`` gives it without loudnorm's internal 192 kHz resampling (a third of the chain's time
    on a long bulletin). Otherwise loudnorm runs and falls back to its dynamic mode itself.
    """
    unit_path, dst = tmp / "unit.wav", tmp / "program.mp3"
    layout.unit.export(unit_path, format="wav")
    end = layout.repeat * layout.unit_samples - layout.gap_samples
    gain = aim_i - level.integrated_lufs
    linear = layout.peak_dbtp + gain <= aim_tp
    loudnorm = f"volume={gain:.2f}dB:precision=double" if linear else (
        f"loudnorm=I={aim_i:.2f}:TP={aim_tp:.2f}:LRA=50"
        f":measured_I={level.integrated_lufs:.2f}:measured_TP={layout.peak_dbtp:.2f}"
        f":measured_LRA={max(level.lra, 0.1):.2f}:measured_thresh={level.threshold_lufs:.2f}"
        ":offset=0:linear=true:print_format=json"
    )
    filters = [f"atrim=end_sample={end}"]
    if layout.lead_samples:
        filters.append(f"adelay=delays={layout.lead_samples}S:all=1")
    if layout.tail_samples:
        filters.append(f"apad=pad_len={layout.tail_samples}")
    filters += [loudnorm, f"aresample={SAMPLE_RATE}"]
    loop = ["-stream_loop", str(layout.repeat - 1)] if layout.repeat > 1 else []
    proc = run_ffmpeg(
        [*loop, "-i", str(unit_path), "-af", ",".join(filters), *mp3_output(bitrate, dst)],
        what="level and encode MP3", loglevel="info",
    )  # fmt: skip
    if linear:
        return dst, "linear"
    stats = _loudnorm_json(proc.stderr.decode("utf-8", "replace"))
    return dst, stats.get("normalization_type", "?")


def master_audio(seg: AudioSegment, settings: ChainSettings | None = None) -> Mastered:
    """Run the whole chain (see the module docstring) on speech or a recording; return the verified MP3.

    Raises AudioError when the audio is silent or cannot be brought to the target.
    """
    settings = settings or ChainSettings()
    seg = to_mono16(seg)
    if seg.frame_count() == 0 or seg.max == 0:
        raise AudioError("audio is completely silent")
    speech = trim_silence(seg)
    if len(speech) == 0:
        raise AudioError("audio contains no sound above the silence threshold")
    total = len(speech) * settings.repeat + settings.gap_ms * (settings.repeat - 1) + settings.lead_in_ms
    if total > settings.max_total_ms:  # refused before any costly step
        raise AudioError(f"the bulletin would last {total / 60_000:.1f} min; the limit is "
                         f"{settings.max_total_ms / 60_000:.0f} min (fewer repeats, a shorter text or a faster voice)")
    if len(speech) < 500:  # ebur128 needs one full 400 ms block
        pad = AudioSegment.silent((500 - len(speech)) // 2 + 1, frame_rate=speech.frame_rate)
        speech = pad + speech + pad
    target, ceiling = settings.target_lufs, settings.true_peak_db
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="loaphuong-master-") as tmpdir:
        tmp = Path(tmpdir)
        raw = _measure_segment(speech)
        if raw.integrated_lufs <= -69.9:
            raise AudioError("audio is too quiet to measure (below -70 LUFS)")
        aim_i, aim_tp = target + MP3_LOSS_LU, ceiling - TRUE_PEAK_MARGIN_DB
        shaped: tuple[AudioSegment, Loudness, float | None] | None = None
        best: tuple[float, Mastered] | None = None
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            allowed = aim_tp - aim_i - 0.05
            if shaped is None or shaped[1].peak_to_loudness > allowed:
                shaped = _shape_speech(speech, raw, allowed, tmp)
            level_seg, level, limit = shaped
            layout = _layout(level_seg, level, settings)
            if layout.peak_dbtp - level.integrated_lufs > aim_tp - aim_i:  # a chime is peakier than speech
                aim_i = aim_tp - (layout.peak_dbtp - level.integrated_lufs)
            mp3_path, mode = _encode_program(layout, level, aim_i, aim_tp, settings.bitrate, tmp)
            if mode != "linear":
                notes.append(f"loudnorm fell back to {mode} mode")
            out = _measure_file(mp3_path)
            if out.integrated_lufs <= -69.9:
                raise AudioError("encoded MP3 failed verification: it decodes to silence")
            if out.duration_ms is None or abs(out.duration_ms - layout.total_ms) > VERIFY_TOLERANCE_MS:
                raise AudioError(
                    f"encoded MP3 failed verification: decodes to {out.duration_ms} ms, expected {layout.total_ms} ms"
                )
            error = target - out.integrated_lufs
            over = out.true_peak_dbtp - ceiling
            log.debug(
                "attempt %d: aim %.2f LUFS / %.2f dBTP, limiter %s -> MP3 %.1f LUFS %.1f dBTP",
                attempt, aim_i, aim_tp, limit, out.integrated_lufs, out.true_peak_dbtp,
            )  # fmt: skip
            result = Mastered(
                data=mp3_path.read_bytes(), duration_ms=out.duration_ms, loudness=out,
                speech_ms=len(speech), warnings=tuple(dict.fromkeys(notes)), attempts=attempt,
            )  # fmt: skip
            if over <= 0 and abs(error) <= LOUDNESS_TOLERANCE_LU:
                score = abs(error)
                if best is None or score < best[0]:
                    best = (score, result)
                if abs(error) <= AIM_TOLERANCE_LU:
                    return result
            if over > 0:
                aim_tp -= over + 0.3
            aim_i += error
        if best is not None:
            return best[1]
    raise AudioError(
        f"could not reach {target:g} LUFS / {ceiling:g} dBTP after {_MAX_ATTEMPTS} attempts "
        f"(last: {out.integrated_lufs:.1f} LUFS, {out.true_peak_dbtp:.1f} dBTP)"
    )


def prepare_for_broadcast(
    seg: AudioSegment, *, lead_in_ms: int = 600, bitrate: str = "64k", tail_ms: int = 300
) -> tuple[bytes, int]:
    """Make speech loudspeaker-ready; return ``(mp3_bytes, duration_ms)``.

    Mono, leading/trailing silence trimmed, ``lead_in_ms`` of silence prepended so the amplifier is
    awake before the first word, ``tail_ms`` appended so players that stop early do not cut the last
    word, levelled to -16 LUFS with true peaks at or below -1 dBTP measured on the MP3, and verified by
    decoding it back. ``duration_ms`` is measured on the decoded MP3.
    """
    mastered = master_audio(seg, ChainSettings(lead_in_ms=lead_in_ms, bitrate=bitrate, tail_ms=tail_ms))
    return mastered.data, mastered.duration_ms


def render_speech(
    text: str,
    engines: Sequence[SpeechEngine],
    *,
    voice: str | None = None,
    speed: float = 1.0,
    lead_in_ms: int = 600,
    bitrate: str = "64k",
) -> RenderedAudio:
    """Synthesize ``text`` with the first working engine and master it for broadcast (no chimes, once).

    The text is spoken as given; :func:`audio.render.render_announcement` normalises it first and adds
    chimes, repeats and caching. ``warnings`` lists the engines that failed before one succeeded.
    Raises SpeechError when every engine fails, AudioError when the audio cannot be mastered.
    """
    seg, engine, errors = synthesize_with_fallback(text, engines, voice=voice, speed=speed)
    mastered = master_audio(seg, ChainSettings(lead_in_ms=lead_in_ms, bitrate=bitrate))
    return RenderedAudio(
        data=mastered.data, duration_ms=mastered.duration_ms, engine=engine,
        warnings=tuple([*errors, *mastered.warnings]), loudness=mastered.loudness,
    )  # fmt: skip
