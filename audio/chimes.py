"""Announcement chimes, synthesised in pure Python (no numpy, no sample files).

Loudspeaker amplifiers need a moment to wake up and listeners need a moment to stop talking, so a bulletin
may open with a chime and close with one. Three are provided:

``intro``      an ascending four-note ding-dong C5-E5-G5-C6 ("attention, an announcement follows"), ~2.0 s.
``outro``      the descending station chime G5-E5-C5, ending on the tonic ("that was all"), ~2.0 s.
``emergency``  a rising two-tone A5→E6 played three times, brighter and faster, ~1.7 s: urgent, not a siren.

Each note is a sum of harmonic partials (bell/vibraphone-like: the upper partials decay faster) shaped by a
short raised-cosine attack and an exponential decay; the chime ends with a short fade so it never clicks.
Synthesis is deterministic: the same kind and sample rate always give the same bytes (results are cached).
Chimes are peak-normalised to -3 dBFS here; the processing chain matches their loudness to the speech.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass
from functools import lru_cache

from .codec import AudioSegment

__all__ = ["CHIME_KINDS", "chime_duration_ms", "chime_pcm", "chime_segment", "chime_wav"]

#: Peak level of a generated chime, in dBFS.
PEAK_DBFS = -3.0
_FADE_OUT_S = 0.08


@dataclass(frozen=True)
class _Note:
    start_s: float
    freq_hz: float
    gain: float = 1.0


@dataclass(frozen=True)
class _Design:
    notes: tuple[_Note, ...]
    duration_s: float
    decay_s: float  # time constant of the fundamental's exponential decay
    attack_s: float
    #: (frequency ratio, relative amplitude, decay speed-up) of each partial
    partials: tuple[tuple[float, float, float], ...]


# Equal-tempered pitches (A4 = 440 Hz).
_C5, _E5, _G5, _A5, _C6, _E6 = 523.251, 659.255, 783.991, 880.000, 1046.502, 1318.510

_BELL = ((1.0, 1.0, 1.0), (2.0, 0.28, 1.7), (3.0, 0.10, 2.4), (4.0, 0.05, 3.2))
_BRIGHT = ((1.0, 1.0, 1.0), (2.0, 0.35, 1.2), (3.0, 0.30, 1.5), (5.0, 0.12, 2.0))

_DESIGNS: dict[str, _Design] = {
    "intro": _Design(
        notes=(_Note(0.00, _C5), _Note(0.32, _E5), _Note(0.64, _G5), _Note(0.96, _C6, 0.9)),
        duration_s=2.0, decay_s=0.45, attack_s=0.006, partials=_BELL,
    ),
    "outro": _Design(
        notes=(_Note(0.00, _G5), _Note(0.40, _E5), _Note(0.80, _C5, 1.1)),
        duration_s=2.0, decay_s=0.50, attack_s=0.006, partials=_BELL,
    ),
    "emergency": _Design(
        notes=tuple(
            _Note(round(i * 0.44 + j * 0.18, 2), freq)
            for i in range(3)
            for j, freq in enumerate((_A5, _E6))
        ),
        duration_s=1.7, decay_s=0.16, attack_s=0.004, partials=_BRIGHT,
    ),
}  # fmt: skip

#: The chime kinds understood by :func:`chime_pcm`.
CHIME_KINDS: tuple[str, ...] = tuple(_DESIGNS)


def _check(kind: str, sample_rate: int) -> _Design:
    if kind not in _DESIGNS:
        raise ValueError(f"unknown chime {kind!r}; choose from {list(CHIME_KINDS)}")
    if not 8000 <= sample_rate <= 192000:
        raise ValueError(f"sample rate must be between 8000 and 192000 Hz, got {sample_rate}")
    return _DESIGNS[kind]


def chime_duration_ms(kind: str) -> int:
    """Length of a chime in milliseconds (independent of the sample rate)."""
    return round(_check(kind, 44100).duration_s * 1000)


@lru_cache(maxsize=32)
def chime_pcm(kind: str, sample_rate: int = 44100) -> bytes:
    """The chime as raw mono signed 16-bit little-endian PCM at ``sample_rate``."""
    design = _check(kind, sample_rate)
    total = round(design.duration_s * sample_rate)
    nyquist = sample_rate / 2
    signal = [0.0] * total
    for note in design.notes:
        first = round(note.start_s * sample_rate)
        attack = max(1, round(design.attack_s * sample_rate))
        for ratio, amp, speed in design.partials:
            freq = note.freq_hz * ratio
            if freq >= nyquist * 0.9:
                continue  # would alias at low sample rates
            step = 2 * math.pi * freq / sample_rate
            # exp(-t/tau) evaluated incrementally: one multiplication per sample
            decay_per_sample = math.exp(-speed / (design.decay_s * sample_rate))
            env = note.gain * amp
            for n in range(total - first):
                shape = 0.5 - 0.5 * math.cos(math.pi * n / attack) if n < attack else 1.0
                signal[first + n] += env * shape * math.sin(step * n)
                env *= decay_per_sample
                if env < 1e-5:
                    break
    fade = round(_FADE_OUT_S * sample_rate)
    for i in range(fade):
        signal[total - fade + i] *= 0.5 + 0.5 * math.cos(math.pi * (i + 1) / fade)
    peak = max(abs(s) for s in signal) or 1.0
    scale = 32767 * 10 ** (PEAK_DBFS / 20) / peak
    return struct.pack(f"<{total}h", *(round(s * scale) for s in signal))


def chime_wav(kind: str, sample_rate: int = 44100) -> bytes:
    """The chime as a mono 16-bit WAV file (handy for previews in the panel)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(chime_pcm(kind, sample_rate))
    return buf.getvalue()


def chime_segment(kind: str, sample_rate: int = 44100) -> AudioSegment:
    """The chime as a pydub AudioSegment (mono, 16-bit)."""
    return AudioSegment(data=chime_pcm(kind, sample_rate), sample_width=2, frame_rate=sample_rate, channels=1)
