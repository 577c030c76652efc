"""The node's output sensor: what it measures at its output over an airing, and the output faults it models.

A real node measures the sound it actually produced — a microphone by the horn, or a loopback of the amplifier
output — as integrated loudness (LUFS) over the airing and reports it as ``output_lufs`` with
``playback_finished`` / ``playback_stopped`` (docs/protocol.md §6.4). The simulator has no amplifier, so it
models the measurement: the panel's media are normalised to :data:`NOMINAL_LUFS`, the volume (0–100) scales
the level by ``20·log10(volume/100)`` dB, and an output fault replaces it with what that fault would give:

* ``amp_dead`` — the amplifier gives nothing: the sensor measures silence (:data:`SILENCE_LUFS`, the floor of
  the EBU R128 gate);
* ``horn_off`` — the horn is disconnected: only the street's noise reaches the microphone (about
  :data:`HORN_OFF_LUFS`);
* ``stuck_low`` — the volume is stuck near zero whatever the plan says (:data:`STUCK_LOW_VOLUME`).

The player itself goes on as if all were well: the node "plays" (``playback_started`` … ``playback_finished``)
and only its measurement tells. Deterministic apart from a ±0.5 dB jitter drawn from the node's random source.
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass

OUTPUT_FAULTS = ("amp_dead", "horn_off", "stuck_low")
#: Integrated loudness of the panel's media at volume 100 (the panel's default loudness target).
NOMINAL_LUFS = -16.0
#: What a sensor measures of silence: the absolute gate of EBU R128 (ffmpeg's ebur128 says -70.0 too).
SILENCE_LUFS = -70.0
#: Street noise alone at the microphone of a node whose horn is disconnected.
HORN_OFF_LUFS = -58.0
#: The volume a ``stuck_low`` node plays at, whatever it was told.
STUCK_LOW_VOLUME = 3


@dataclass(frozen=True, slots=True)
class OutputFault:
    """``--output-fault KIND[:SHARE]``: the fault and the share (0–1] of the process's nodes that have it."""

    kind: str
    share: float = 1.0

    def count(self, nodes: int) -> int:
        """How many of ``nodes`` nodes get the fault: the share rounded, at least one when the share is > 0."""
        return min(nodes, max(1, round(self.share * nodes))) if nodes else 0


def parse_output_fault(text: str) -> OutputFault:
    """``amp_dead``, ``horn_off:0.25``, ``stuck_low:1`` → :class:`OutputFault`; ValueError says what is wrong."""
    kind, sep, share_text = text.strip().partition(":")
    if kind not in OUTPUT_FAULTS:
        raise ValueError(f"output fault {kind!r}: expected one of {', '.join(OUTPUT_FAULTS)} (KIND[:SHARE])")
    share = 1.0
    if sep:
        try:
            share = float(share_text)
        except ValueError:
            raise ValueError(f"output fault share {share_text!r}: expected a number in (0, 1]") from None
        if not (math.isfinite(share) and 0.0 < share <= 1.0):
            raise ValueError(f"output fault share {share_text!r}: expected a number in (0, 1]")
    return OutputFault(kind, share)


def measured_lufs(fault: str | None, volume: int, rng: random.Random) -> float:
    """The output level (LUFS, one decimal) a node with ``fault`` (None: healthy) measures over an airing
    played at ``volume``."""
    if fault == "amp_dead":
        return SILENCE_LUFS
    if fault == "horn_off":
        return round(HORN_OFF_LUFS + rng.uniform(-1.0, 1.0), 1)
    level = STUCK_LOW_VOLUME if fault == "stuck_low" else volume
    if level <= 0:
        return SILENCE_LUFS
    return round(max(SILENCE_LUFS, NOMINAL_LUFS + 20 * math.log10(level / 100) + rng.uniform(-0.5, 0.5)), 1)


def output_fault_arg(text: str) -> OutputFault:
    """argparse ``type`` of ``--output-fault``: a clear one-line error for a bad value."""
    try:
        return parse_output_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--output-fault KIND[:SHARE]`` and ``--no-output-sensor``, the same in both simulators."""
    parser.add_argument("--output-fault", type=output_fault_arg, default=None, metavar="KIND[:SHARE]",
                        help=f"output fault of the first SHARE (0-1, default 1: all) of this process's nodes: "
                             f"{', '.join(OUTPUT_FAULTS)}; they play but measure silence or too low a level")
    parser.add_argument("--no-output-sensor", dest="output_sensor", action="store_false",
                        help="nodes without an output sensor: they report output_sensor false, no output_lufs")


def faulty_ids(fault: OutputFault | None, node_ids: list[str]) -> set[str]:
    """The node ids that get ``fault``: the first ``fault.count`` of them, in the given order."""
    return set(node_ids[: fault.count(len(node_ids))]) if fault is not None else set()
