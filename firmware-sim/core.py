"""The node core: everything a protocol v1 node decides, with the clock and the I/O injected.

One state machine — plan → media → playback → events → commands — shared by the protocol simulator
(:mod:`firmware_sim.node`, one node on paho and threads) and the scale simulator (:mod:`firmware_sim.scale`,
thousands of nodes multiplexed on one asyncio loop). The drivers only move bytes and time:

* they feed it: :meth:`NodeCore.boot` (persisted state, stored plan, verified media), :meth:`NodeCore.on_plan`,
  :meth:`NodeCore.on_command`, :meth:`NodeCore.step` (a time tick), :meth:`NodeCore.media_result`;
* it answers through the :class:`NodeIO` port it was given: persist the state, persist-then-send an event,
  send an ack, store the plan, republish the status, log a play, reboot, fetch media; and :meth:`NodeCore.step`
  returns when it wants the next tick, :meth:`NodeCore.media_todo` which files to fetch now.

Nothing here opens a socket or a file, starts a thread or sleeps, so every check is the same at every scale:
plan signature and version (``firmware_sim.wire``), media size and sha256 (:func:`verify_media`), expiry,
quiet hours, pre-emption by priority, volume profile, duplicate commands (§9) and the gap-free event
sequence. The core is not thread-safe: a driver with threads calls it under one lock.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from firmware_sim.output import SILENCE_LUFS, measured_lufs
from firmware_sim.wire import decode_from_panel

from devices.protocol import (
    PRIORITY_RANK,
    Ack,
    AckStatus,
    Command,
    CommandName,
    Event,
    EventName,
    Media,
    NodeState,
    Plan,
    PlanItem,
    PlanRequest,
    PlayNowArgs,
    Priority,
    ProtocolError,
    Status,
    StopArgs,
    encode,
    format_ts,
    next_profile_change,
    parse_args,
    parse_ts,
    profile_step,
    quiet_overlap,
)

log = logging.getLogger("firmware_sim")

DEFAULT_VOLUME = 80
#: Item outcomes (played / failed) are remembered this long after the item's start.
OUTCOME_MEMORY_S = 4 * 24 * 3600
#: Media download retry: first delay, doubling per failure up to the cap (±20 % jitter).
MEDIA_RETRY_FIRST_S = 1.0
MEDIA_RETRY_MAX_S = 60.0
#: play_now: download attempts for the alert's media before the command is acked ``error``.
ALERT_FETCH_ATTEMPTS = 3
#: play_now: window of repeats 2…n (they wait at most this long behind a higher-priority item).
ALERT_REPEAT_WINDOW_MS = 60_000
#: The result of a command accepted but never answered before a restart (docs/protocol.md §9: the answer to
#: its duplicates).
COMMAND_INTERRUPTED = "not completed: the node restarted"


class NodeIO(Protocol):
    """What the core asks of its driver. Every call is made synchronously, inside a core method."""

    def persist(self) -> None:
        """Make :meth:`NodeCore.snapshot` durable (now, or in a group commit before anything sent after it)."""

    def event(self, event: Event, payload: bytes) -> None:
        """A new event (its ``seq`` is taken): persist the state and the outbox entry, then send it (QoS 1)."""

    def ack(self, payload: bytes) -> None:
        """Send an ack (QoS 1), after the state persisted before this call is durable."""

    def save_plan(self, raw: bytes) -> None:
        """Store the accepted plan's exact bytes (it is verified again at the next boot)."""

    def status_changed(self) -> None:
        """Something the retained status shows changed (plan version, volume): republish it."""

    def record(self, record: dict[str, Any]) -> None:
        """One line of the playback log (an item's outcome)."""

    def started(self, playing: Playing) -> None:
        """Sound started (stream probe, audio sink, benchmark hooks)."""

    def reboot_requested(self) -> None:
        """The ``reboot`` command was acked: restart from persisted state, soon and outside this call."""

    def media_wanted(self) -> None:
        """The set of media to fetch, or their retry times, changed: ask :meth:`NodeCore.media_todo` again."""


@dataclass(slots=True)
class AlertRun:
    """A ``play_now`` in progress: ``repeat`` plays of one alert, one pending or playing entry at a time."""

    args: PlayNowArgs
    command_id: str
    rank: int
    n: int = 1  # the repeat pending or playing
    acked: bool = False  # ack ``ok`` is sent when repeat 1 starts
    entry: Entry | None = None


@dataclass(slots=True)
class Entry:
    """A plan item (or one repeat of an alert) with its start time resolved on the node's clock."""

    key: str
    item: PlanItem
    start: float  # epoch seconds
    rank: int
    plan_version: int | None
    deadline: float  # end of the window in which the item may start (``end_at`` closes it too)
    sha: str | None  # the media file this entry plays; ``None`` for a stream
    run: AlertRun | None = None  # set for the repeats of a play_now

    @property
    def quiet_exempt(self) -> bool:
        """Live emergencies ignore quiet hours; drills and everything else respect them."""
        return self.item.priority == Priority.emergency and not self.item.drill


@dataclass(slots=True)
class Playing:
    entry: Entry
    actual_start: float
    end: float
    volume: int
    cut_by_end_at: bool = False
    stream_error: str | None = None
    #: A stream item: when its first audio bytes arrived (node clock; the live paging latency) and how many came.
    first_audio_at: float | None = None
    stream_bytes: int = 0


@dataclass(slots=True)
class FetchState:
    attempts: int = 0
    next_attempt: float = 0.0
    delay: float = MEDIA_RETRY_FIRST_S
    last_reason: str | None = None
    running: bool = False
    #: A resync came while an attempt was in flight: if that attempt fails, retry at once, not after back-off.
    retry_now: bool = False
    entry: Entry | None = None  # the first item needing the file when the attempt began (failures are its)


def item_key(item: PlanItem) -> str:
    """Identity of an item across plan versions (§7.4): id, start as an instant to the millisecond ("…:00Z"
    equals "…:00.000Z") and media (or stream URL)."""
    if item.media is not None:
        source = item.media.sha256
    else:
        assert item.stream is not None
        source = "stream-" + hashlib.sha256(item.stream.url.encode()).hexdigest()[:32]
    return f"{item.id}|{format_ts(parse_ts(item.start))}|{source}"


def make_entry(item: PlanItem, rank: int, plan_version: int | None, run: AlertRun | None = None) -> Entry:
    start = parse_ts(item.start).timestamp()
    deadline = start + item.max_late_ms / 1000.0
    if item.end_at is not None:
        deadline = min(deadline, parse_ts(item.end_at).timestamp())
    return Entry(key=item_key(item), item=item, start=start, rank=rank, plan_version=plan_version,
                 deadline=deadline, sha=item.media.sha256 if item.media is not None else None, run=run)


def ts(epoch: float) -> str:
    return format_ts(datetime.fromtimestamp(epoch, UTC))


def short(reason: object, limit: int = 500) -> str:
    text = str(reason)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verify_media(media: Media, size: int, digest: str) -> str | None:
    """The check every node makes of the bytes it was given (§7.2): ``None`` if they are the file, else why not."""
    if size != media.bytes:
        return f"size mismatch: {size} bytes, expected {media.bytes}"
    if digest != media.sha256:
        return f"sha256 mismatch: got {digest}"
    return None


def refusal(exc: Exception) -> str:
    """The reason reported for a payload that could not be decoded."""
    return str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}"


class NodeCore:
    """One node's protocol behaviour. See the module docstring for how a driver feeds it."""

    def __init__(self, node_id: str, public_key: Ed25519PublicKey, clock: Callable[[], float], io: NodeIO, *,
                 rng: random.Random | None = None, max_idle_s: float = 2.0,
                 counts: dict[str, int] | None = None, output_fault: str | None = None,
                 output_sensor: bool = True) -> None:
        self.node_id = node_id
        #: An output fault (firmware_sim.output: amp_dead, horn_off, stuck_low) and whether the node has an
        #: output sensor at all: what ``output_lufs`` it reports (docs/protocol.md §7.10).
        self.output_fault = output_fault
        self.output_sensor = output_sensor
        self.public_key = public_key
        self.clock = clock
        self.io = io
        self.rng = rng or random.Random()
        #: Longest time :meth:`step` lets pass without a tick (a wall-clock step is noticed within it).
        self.max_idle_s = max_idle_s
        self.plan: Plan | None = None
        self.entries: list[Entry] = []
        self.handled: set[str] = set()
        self.ready_reported: set[str] = set()
        self.current: Playing | None = None
        self.verified: set[str] = set()
        self.fetch: dict[str, FetchState] = {}
        self.seen_commands: dict[str, float] = {}  # id → expires_at (epoch s) of every command accepted
        # id → the first ack of an accepted command (its bytes, as sent): a duplicate is answered with it (§9).
        self.command_results: dict[str, str] = {}
        self.dup_waiting: dict[str, int] = {}  # duplicates that came before their command's result (RAM only)
        self.seq = 0
        self.boot_count = 0
        self.volume = DEFAULT_VOLUME
        self.due_seen: set[str] = set()  # items this run has seen due (start <= now <= deadline)
        self.alert: AlertRun | None = None  # a play_now in progress (not persisted: one-shot)
        # The volume-profile step last applied: (its start, epoch s; its volume). set_volume overrides the
        # base volume until a step with another start begins.
        self.profile_mark: tuple[float, int] | None = None
        self.halted = False  # after a power cut or a stop: nothing more is emitted, persisted or sent
        #: Commands executed and duplicates answered without executing (a driver may share one dict among nodes).
        self.counts: dict[str, int] = counts if counts is not None else {}
        for key in ("commands", "duplicate_commands"):
            self.counts.setdefault(key, 0)

    # ------------------------------------------------------------------------------ properties

    @property
    def plan_version(self) -> int | None:
        return self.plan.version if self.plan is not None else None

    @property
    def session(self) -> int:
        """Boot counter of this run (the ``session`` of status and last-will)."""
        return self.boot_count

    def plan_ready(self, version: int | None = None) -> bool:
        """A plan (of ``version`` if given) is applied and all its media are verified."""
        plan = self.plan
        if plan is None or (version is not None and plan.version != version):
            return False
        return all(item.media is None or item.media.sha256 in self.verified for item in plan.items)

    # ----------------------------------------------------------------------------- boot and state

    def boot(self, state: dict[str, Any] | None, plan_raw: bytes | None, verified: Iterable[str]) -> None:
        """Boot (§11): counters and outcomes from ``state``, ``session`` + 1, the stored plan verified again, and
        the item the power cut interrupted reported ``interrupted``."""
        interrupted = None
        if state:
            self.boot_count = int(state.get("boot", 0))
            self.seq = int(state.get("seq", 0))
            self.volume = int(state.get("volume", DEFAULT_VOLUME))
            self.seen_commands = {str(k): float(v) for k, v in state.get("seen_commands", {}).items()}
            self.command_results = {str(k): str(v) for k, v in state.get("command_results", {}).items()
                                    if k in self.seen_commands}
            for cid in self.seen_commands.keys() - self.command_results.keys():
                # Accepted but never answered (the power went, or a reboot cut a play_now short before it
                # sounded): that is its result now, the answer to any duplicate of it (§9).
                ack = Ack(node_id=self.node_id, command_id=cid, status=AckStatus.error, at=ts(self.clock()),
                          error=COMMAND_INTERRUPTED)
                self.command_results[cid] = encode(ack).decode("utf-8")
            self.handled = set(state.get("handled", []))
            self.ready_reported = set(state.get("ready_reported", []))
            interrupted = state.get("playing")
            mark = state.get("profile_mark")
            self.profile_mark = (float(mark[0]), int(mark[1])) if mark else None
        self.boot_count += 1
        self.verified = set(verified)
        self.io.persist()
        if plan_raw:
            try:
                plan = decode_from_panel(Plan, plan_raw, self.public_key, node_id=self.node_id)
            except ProtocolError as exc:
                log.error("%s: stored plan refused (%s); waiting for the panel", self.node_id, exc)
            else:
                self._set_plan(plan)
        if interrupted:
            self._report_interrupted(interrupted)
            self.io.persist()

    def snapshot(self) -> dict[str, Any]:
        """What a node keeps in its flash (the argument of :meth:`boot` after a restart)."""
        playing = None
        if self.current is not None:
            playing = self._record(self.current.entry, "interrupted", self.current.actual_start)
        return {
            "node_id": self.node_id,
            "boot": self.boot_count,
            "seq": self.seq,
            "volume": self.volume,
            "seen_commands": self.seen_commands,
            "command_results": self.command_results,
            "handled": sorted(self.handled),
            "ready_reported": sorted(self.ready_reported),
            "verified": sorted(self.verified),
            "playing": playing,
            "profile_mark": list(self.profile_mark) if self.profile_mark else None,
        }

    def status(self, state: NodeState, *, firmware: str, uptime_s: int, heartbeat_s: int,
               rssi_dbm: int | None = None) -> bytes:
        """The retained ``status`` payload (§6.1); the last-will is ``status(NodeState.offline, …)``."""
        if state == NodeState.offline:
            return encode(Status(node_id=self.node_id, state=state, session=self.boot_count))
        now = ts(self.clock())
        return encode(Status(
            node_id=self.node_id, state=state, session=self.boot_count, at=now, firmware=firmware,
            plan_version=self.plan_version, volume=self.volume,
            playing=self.current.entry.item.id if self.current else None, clock=now, rssi_dbm=rssi_dbm,
            uptime_s=uptime_s, heartbeat_s=heartbeat_s))

    def plan_request(self) -> bytes:
        """The ``plan_request`` sent after every CONNACK (§6.7): the plan version held, so the panel answers only
        when the node lacks the current plan (a clustered broker may not have kept the retained one)."""
        return encode(PlanRequest(node_id=self.node_id, at=ts(self.clock()), have_version=self.plan_version))

    def shutdown(self) -> None:
        """A clean stop (or the ``reboot`` command): the playing item ends ``playback_failed`` ``shutdown``."""
        if self.current is not None:
            self._end_current("failed", "shutdown")
        self.io.persist()

    def halt(self) -> None:
        """Power off: from now on nothing is emitted, persisted or sent."""
        self.halted = True

    # -------------------------------------------------------------------------------- events

    def _emit(self, name: EventName, **fields: Any) -> None:
        """Produce one event: the next seq, handed to the driver to persist (with the state) and send."""
        if self.halted:
            log.debug("%s: halted, event %s dropped", self.node_id, name)
            return
        self.seq += 1
        if fields.get("reason") is not None:
            fields["reason"] = short(fields["reason"])
        event = Event(node_id=self.node_id, seq=self.seq, at=ts(self.clock()), event=name, **fields)
        if log.isEnabledFor(logging.INFO):
            log.info("%s: event #%d %s %s", self.node_id, self.seq, name.value,
                     {k: v for k, v in fields.items() if v is not None})
        self.io.event(event, encode(event))

    # ---------------------------------------------------------------------------------- plans

    def on_plan(self, raw: bytes) -> None:
        if not raw:
            # An empty retained publish only clears the broker's copy; the node keeps its plan.
            log.warning("%s: empty payload on plan topic ignored (retained plan cleared)", self.node_id)
            return
        try:
            plan = decode_from_panel(Plan, raw, self.public_key, node_id=self.node_id)
        except Exception as exc:  # ProtocolError, or anything unforeseen: refused either way
            self._reject_plan(refusal(exc))
            return
        held = self.plan_version
        if held is not None and plan.version < held:
            self._reject_plan(f"replayed or stale plan: version {plan.version} < held {held}")
            return
        if held is not None and plan.version == held:
            log.debug("%s: plan v%d already held", self.node_id, held)
            return
        self.io.save_plan(bytes(raw))
        self._set_plan(plan)
        self._emit(EventName.plan_applied, plan_version=plan.version)
        log.info("%s: plan v%d applied (%d items)", self.node_id, plan.version, len(plan.items))
        self.io.status_changed()
        self.io.media_wanted()

    def _reject_plan(self, reason: str) -> None:
        log.warning("%s: plan refused: %s", self.node_id, reason)
        self._emit(EventName.plan_rejected, plan_version=self.plan_version, reason=reason)

    def _prune_outcomes(self) -> None:
        """Forget item outcomes older than any plan can reach back (an item never starts twice, even if a
        later plan re-adds it, so outcomes are kept across plan versions and reboots, not per plan)."""
        horizon = self.clock() - OUTCOME_MEMORY_S
        current = {e.key for e in self._all_entries()}

        def keep(key: str) -> bool:
            if key in current:
                return True
            try:
                return parse_ts(key.rsplit("|", 2)[1]).timestamp() >= horizon
            except (ProtocolError, IndexError, ValueError):
                return False

        self.handled = {k for k in self.handled if keep(k)}
        self.ready_reported = {k for k in self.ready_reported if keep(k)}

    def _set_plan(self, plan: Plan) -> None:
        entries = [make_entry(item, PRIORITY_RANK[item.priority], plan.version) for item in plan.items]
        entries.sort(key=lambda e: (e.start, -e.rank))
        keys = {e.key for e in entries}
        self.plan = plan
        self.entries = entries
        self.due_seen &= keys | {e.key for e in self._alert_entries()}
        self._prune_outcomes()
        cur = self.current
        if cur is not None and cur.entry.run is None:  # alerts are not plan items: a plan never cuts them
            if cur.entry.key not in keys:
                self._end_current("failed", "removed")
            else:
                cur.entry = next(e for e in entries if e.key == cur.entry.key)
                self._apply_end_at(cur)
        # Fresh retry budget for media the new plan still needs (an attempt in flight keeps its state).
        needed = {e.sha for e in self._all_entries()}
        self.fetch = {sha: st for sha, st in self.fetch.items() if sha in needed or st.running}
        self._apply_profile(self.clock())

    def _alert_entries(self) -> list[Entry]:
        run = self.alert
        return [run.entry] if run is not None and run.entry is not None else []

    def _all_entries(self) -> list[Entry]:
        """Plan entries and the pending/playing repeat of a play_now."""
        return [*self.entries, *self._alert_entries()]

    def _apply_profile(self, now: float) -> None:
        """Follow the plan's volume profile: when a new step begins, it becomes the base volume (a
        ``set_volume`` in between overrides it until the next step)."""
        plan = self.plan
        if plan is None or not plan.volume_profile:
            return
        step = profile_step(plan.volume_profile, plan.tz, datetime.fromtimestamp(now, UTC))
        if step is None:
            return
        mark = (step[0].timestamp(), step[1])
        if mark == self.profile_mark:
            return
        self.profile_mark = mark
        changed = self.volume != step[1]
        self.volume = step[1]
        self.io.persist()
        log.info("%s: volume profile step %s → volume %d", self.node_id, ts(mark[0]), step[1])
        if changed:
            self.io.status_changed()

    def _next_profile_change(self, now: float) -> float | None:
        plan = self.plan
        if plan is None or not plan.volume_profile:
            return None
        nxt = next_profile_change(plan.volume_profile, plan.tz, datetime.fromtimestamp(now, UTC))
        return nxt.timestamp() if nxt else None

    # -------------------------------------------------------------------------------- commands

    def on_command(self, raw: bytes, *, retained: bool) -> None:
        if not raw:
            # Someone cleared a wrongly retained command: nothing to execute, nothing to report.
            log.warning("%s: empty payload on cmd topic ignored", self.node_id)
            return
        try:
            cmd = decode_from_panel(Command, raw, self.public_key, node_id=self.node_id)
        except Exception as exc:  # ProtocolError, or anything unforeseen: refused either way
            reason = refusal(exc)
            log.warning("%s: command refused: %s", self.node_id, reason)
            self._emit(EventName.command_rejected, reason=reason)
            return
        if retained:
            # Commands are never retained; a retained one would be replayed on every reconnect.
            log.warning("%s: retained command %s refused", self.node_id, cmd.id)
            self._emit(EventName.command_rejected, reason=f"retained command {cmd.id}")
            return
        now = self.clock()
        self.seen_commands = {k: v for k, v in self.seen_commands.items() if v >= now}
        self.command_results = {k: v for k, v in self.command_results.items() if k in self.seen_commands}
        if cmd.id in self.seen_commands:
            # A duplicate (a QoS 1 redelivery, a replay): never executed again, answered with the first
            # result — or, if that is not known yet (a play_now waiting to sound), as soon as it is.
            self.counts["duplicate_commands"] += 1
            first = self.command_results.get(cmd.id)
            if first is None:
                self.dup_waiting[cmd.id] = self.dup_waiting.get(cmd.id, 0) + 1
                log.info("%s: duplicate command %s: answered once its result is known", self.node_id, cmd.id)
            else:
                log.info("%s: duplicate command %s answered with its first result", self.node_id, cmd.id)
                self._send_ack(first.encode("utf-8"))
            return
        try:
            expires = parse_ts(cmd.expires_at).timestamp()
        except ProtocolError as exc:
            self._ack(cmd.id, AckStatus.rejected, error=str(exc))
            return
        if expires < now:
            self._ack(cmd.id, AckStatus.rejected, error=f"expired at {cmd.expires_at}")
            return
        self.seen_commands[cmd.id] = expires
        self.counts["commands"] += 1
        self.io.persist()
        self._execute(cmd)

    def _execute(self, cmd: Command) -> None:
        log.info("%s: command %s (%s)", self.node_id, cmd.name, cmd.id)
        if cmd.name == CommandName.ping:
            self._ack(cmd.id, AckStatus.ok, data={"time": ts(self.clock())})
        elif cmd.name == CommandName.resync:
            self.io.status_changed()
            for st in self.fetch.values():
                st.next_attempt = 0.0  # retry missing media now
                st.retry_now = True  # also if an attempt is in flight and about to fail
            self.io.media_wanted()
            version = self.plan_version
            self._ack(cmd.id, AckStatus.ok, data={} if version is None else {"plan_version": version})
        elif cmd.name == CommandName.stop:
            self._stop_command(cmd)
        elif cmd.name == CommandName.set_volume:
            volume = cmd.args.get("volume")
            if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
                self._ack(cmd.id, AckStatus.error, error="args.volume must be an integer 0..100")
                return
            self.volume = volume
            self.io.persist()
            self.io.status_changed()
            self._ack(cmd.id, AckStatus.ok, data={"volume": volume})
        elif cmd.name == CommandName.play_now:
            self._play_now(cmd)
        elif cmd.name == CommandName.reboot:
            self._ack(cmd.id, AckStatus.ok, data={"session": self.boot_count + 1})
            self.io.reboot_requested()
        else:
            self._ack(cmd.id, AckStatus.rejected, error=f"unknown command {cmd.name!r}")

    def _stop_command(self, cmd: Command) -> None:
        """``stop``: without ``alert_id`` cut whatever plays; with it, that alert only (its remaining repeats
        are forgotten). Plan items end ``playback_failed`` ``stopped`` (as in v1), alerts ``playback_stopped``
        ``command``."""
        try:
            args = parse_args(cmd.name, cmd.args)
        except ProtocolError as exc:
            self._ack(cmd.id, AckStatus.error, error=str(exc))
            return
        assert isinstance(args, StopArgs)
        cur = self.current
        stopped = None
        run = self.alert
        if args.alert_id is not None:
            if run is not None and run.args.alert_id == args.alert_id:
                if cur is not None and cur.entry.run is run:
                    stopped = cur.entry.item.id
                    self._end_current("stopped", "command", command_id=cmd.id)
                self._drop_alert(run, "stopped by command " + cmd.id)
        elif cur is not None:
            stopped = cur.entry.item.id
            if cur.entry.run is not None:
                self._end_current("stopped", "command", command_id=cmd.id)
                self._drop_alert(cur.entry.run, "stopped by command " + cmd.id)
            else:
                self._end_current("failed", "stopped", command_id=cmd.id)
        self.io.persist()
        self._ack(cmd.id, AckStatus.ok, data={} if stopped is None else {"stopped": stopped})

    def _play_now(self, cmd: Command) -> None:
        """``play_now``: validate, refuse in quiet hours unless a live emergency, then keep the alert for
        :meth:`step` (which pre-empts, plays ``repeat`` times and acks ``ok`` when repeat 1 starts); the media
        are fetched if not cached (ack ``error`` after :data:`ALERT_FETCH_ATTEMPTS`)."""
        try:
            args = parse_args(cmd.name, cmd.args)
        except ProtocolError as exc:
            self._ack(cmd.id, AckStatus.error, error=str(exc))
            return
        assert isinstance(args, PlayNowArgs)
        rank = PRIORITY_RANK[args.priority]
        now = self.clock()
        old = self.alert
        if old is not None and old.rank > rank:
            self._ack(cmd.id, AckStatus.error,
                      error=f"alert {old.args.alert_id} of higher priority {old.args.priority.value} is playing")
            return
        run = AlertRun(args=args, command_id=cmd.id, rank=rank)
        expires = parse_ts(cmd.expires_at).timestamp()
        entry = self._alert_entry(run, 1, now, max(0, round((expires - now) * 1000)))
        plan = self.plan
        total_ms = args.duration_ms * args.repeat + args.gap_ms * (args.repeat - 1)
        if (plan is not None and plan.quiet_hours is not None and not entry.quiet_exempt
                and quiet_overlap(plan.quiet_hours, plan.tz, datetime.fromtimestamp(now, UTC),
                                  datetime.fromtimestamp(now + total_ms / 1000, UTC))):
            self.handled.add(entry.key)
            self._fail_unplayed(entry, "quiet_hours")
            self._ack(cmd.id, AckStatus.error,
                      error=f"quiet hours {plan.quiet_hours.start}-{plan.quiet_hours.end} {plan.tz}")
            return
        if old is not None:  # a new alert of equal or higher priority replaces the one in progress
            cur = self.current
            if cur is not None and cur.entry.run is old:
                self._end_current("stopped", "preempted", command_id=cmd.id)
            self._drop_alert(old, f"superseded by alert {args.alert_id}")
        run.entry = entry
        self.alert = run
        if entry.sha is not None and entry.sha in self.fetch:
            self.fetch[entry.sha].next_attempt = 0.0
        log.info("%s: alert %s (%s%s, %d×) accepted", self.node_id, args.alert_id, args.priority.value,
                 ", drill" if args.drill else "", args.repeat)
        self.io.media_wanted()

    def _alert_entry(self, run: AlertRun, n: int, start: float, window_ms: int) -> Entry:
        args = run.args
        item = PlanItem(id=args.item_id(n), start=ts(start), media=args.media, stream=args.stream,
                        priority=args.priority, title=args.title, max_late_ms=window_ms, drill=args.drill,
                        volume=args.volume)
        return make_entry(item, run.rank, None, run)

    def _drop_alert(self, run: AlertRun, why: str) -> None:
        """Forget an alert's remaining repeats; a play_now not started yet is acked ``error``."""
        if self.alert is run:
            self.alert = None
        if not run.acked:
            run.acked = True
            self._ack(run.command_id, AckStatus.error, error=f"not started: {why}")

    def _ack(self, command_id: str, status: AckStatus, *, error: str | None = None,
             data: dict[str, Any] | None = None) -> None:
        if status != AckStatus.ok:
            log.warning("%s: command %s %s: %s", self.node_id, command_id, status.value, error)
        ack = Ack(node_id=self.node_id, command_id=command_id, status=status, at=ts(self.clock()),
                  error=short(error) if error else None, data=data or {})
        payload = encode(ack)
        if self.halted:
            return
        copies = 1
        if command_id in self.seen_commands and command_id not in self.command_results:
            # The first answer to an accepted command is its result: persisted before it is sent, and
            # sent again, byte for byte, for every duplicate of the command (§9).
            self.command_results[command_id] = payload.decode("utf-8")
            copies += self.dup_waiting.pop(command_id, 0)
            self.io.persist()
        for _ in range(copies):
            self._send_ack(payload)

    def _send_ack(self, payload: bytes) -> None:
        if not self.halted:
            self.io.ack(payload)

    # -------------------------------------------------------------------------------- playback

    def step(self, now: float | None = None) -> float:
        """Do everything due at ``now`` (node clock; read from the clock at each decision if not given);
        return the node-clock time of the next thing to do."""
        fixed = now is not None
        if now is None:
            now = self.clock()
        self._apply_profile(now)
        cur = self.current
        if cur is not None and now >= cur.end:
            if cur.cut_by_end_at:
                self._end_current("stopped", "end_at")
            else:
                self._end_current("finished", cur.stream_error)
        while True:
            if not fixed:
                now = self.clock()
            run = self.alert
            due = [e for e in self._all_entries() if e.key not in self.handled and e.start <= now]
            for entry in due:
                if now > entry.deadline:
                    # Window closed. Media never verified while the item was due here → media_unavailable;
                    # otherwise (busy, or the node was off or did not hold the item then) → stale.
                    self.handled.add(entry.key)
                    missing = (entry.sha is not None and entry.sha not in self.verified
                               and entry.key in self.due_seen)
                    self.due_seen.discard(entry.key)
                    self._fail_unplayed(entry, "media_unavailable" if missing else "stale")
                    if entry.run is not None:
                        self._drop_alert(entry.run, "media_unavailable" if missing else "stale")
                else:
                    self.due_seen.add(entry.key)
            # Only items whose media are verified can start; the others stay due (the fetch goes on until the
            # deadline, and a file verified in time plays late). While an alert is in progress (playing,
            # between repeats or fetching), plan items of its priority or lower wait; higher ones may cut it.
            ready = [e for e in due if e.key not in self.handled
                     and (e.sha is None or e.sha in self.verified)
                     and (e.run is not None or run is None or e.rank > run.rank)]
            if not ready:
                break
            best = max(ready, key=lambda e: (e.rank, e.run is not None, -e.start))
            cur = self.current
            if cur is not None:
                # A play_now cuts what plays at its priority or lower; a plan item only a lower one.
                if best.rank < cur.entry.rank or (best.rank == cur.entry.rank and best.run is None):
                    break  # waits for the current item to finish
                if best.run is not None or cur.entry.run is not None:
                    cut_run = cur.entry.run
                    self._end_current("stopped", "preempted",
                                      command_id=best.run.command_id if best.run else None)
                    if cut_run is not None and cut_run is not best.run:
                        self._drop_alert(cut_run, f"preempted by {best.item.id}")
                else:
                    self._end_current("failed", "preempted")
            if not best.quiet_exempt and self._in_quiet_hours(best, now):
                self.handled.add(best.key)
                self.due_seen.discard(best.key)
                self._fail_unplayed(best, "quiet_hours")
                if best.run is not None:
                    self._drop_alert(best.run, "quiet_hours")
                continue
            self._begin(best, now if fixed else self.clock())
        # Next wake-up: end of the current item, next start, the deadline of a waiting item, a volume step.
        if not fixed:
            now = self.clock()
        wake = now + self.max_idle_s
        if self.current is not None:
            wake = min(wake, self.current.end)
        for entry in self._all_entries():
            if entry.key not in self.handled:
                wake = min(wake, entry.start if entry.start > now else entry.deadline + 0.001)
        profile = self._next_profile_change(now)
        if profile is not None:
            wake = min(wake, profile)
        return wake

    def _in_quiet_hours(self, entry: Entry, start: float) -> bool:
        """Would any part of ``entry`` sound inside the plan's quiet hours if it started at ``start``?"""
        plan = self.plan
        if plan is None or plan.quiet_hours is None:
            return False
        end = start + entry.item.duration_ms / 1000.0
        if entry.item.end_at is not None:
            end = min(end, parse_ts(entry.item.end_at).timestamp())
        return quiet_overlap(plan.quiet_hours, plan.tz, datetime.fromtimestamp(start, UTC),
                             datetime.fromtimestamp(end, UTC))

    @staticmethod
    def _apply_end_at(playing: Playing) -> None:
        item = playing.entry.item
        natural = playing.actual_start + item.duration_ms / 1000.0
        end_at = parse_ts(item.end_at).timestamp() if item.end_at is not None else None
        playing.cut_by_end_at = end_at is not None and end_at < natural
        playing.end = end_at if playing.cut_by_end_at and end_at is not None else natural

    @staticmethod
    def _fields(entry: Entry, actual: float | None = None) -> dict[str, Any]:
        """The event fields that identify an item (and its start, if it started)."""
        item = entry.item
        run = entry.run
        fields: dict[str, Any] = dict(
            plan_version=entry.plan_version,
            item_id=item.id,
            schedule_id=item.schedule_id,
            sha256=entry.sha,
            scheduled_start=item.start,
            priority=item.priority,
            drill=item.drill,
            command_id=run.command_id if run else None,
            alert_id=run.args.alert_id if run else None,
        )
        if actual is not None:
            fields.update(actual_start=ts(actual), offset_ms=round((actual - entry.start) * 1000))
        return fields

    def _begin(self, entry: Entry, actual: float) -> None:
        item = entry.item
        self._report_ready()  # media_ready always precedes playback_started
        self.handled.add(entry.key)
        self.due_seen.discard(entry.key)
        volume = item.volume if item.volume is not None else self.volume
        playing = Playing(entry=entry, actual_start=actual, end=actual, volume=volume)
        self._apply_end_at(playing)
        self.current = playing
        fields = self._fields(entry, actual)
        self._emit(EventName.playback_started, **fields)
        log.info("%s: playing %s (%s, offset %+d ms, %d ms, volume %d)", self.node_id, item.id,
                 item.priority.value, fields["offset_ms"], round((playing.end - actual) * 1000), volume)
        run = entry.run
        if run is not None and not run.acked:
            run.acked = True
            self._ack(run.command_id, AckStatus.ok, data={"item_id": item.id})
        if not self.halted:
            self.io.started(playing)

    def _end_current(self, result: str, reason: str | None, *, command_id: str | None = None) -> None:
        """End the current playback: ``"finished"`` (``reason`` optional, e.g. an unreachable stream),
        ``"stopped"`` (``playback_stopped``: end_at, cut by an alert, stop of an alert) or ``"failed"``
        (``playback_failed``: preempted/stopped/removed/shutdown, as in v1)."""
        cur = self.current
        if cur is None:
            return
        self.current = None
        entry = cur.entry
        fields = self._fields(entry, cur.actual_start)
        if command_id is not None and entry.run is None:
            fields["command_id"] = command_id  # the command that cut a plan item
        if result in ("finished", "stopped"):  # sound was produced: report what the sensor measured of it
            if not self.output_sensor:
                fields["output_sensor"] = False
            elif cur.stream_error is not None:
                fields["output_lufs"] = SILENCE_LUFS  # the stream could not be heard at all (§7.6)
            else:
                fields["output_lufs"] = measured_lufs(self.output_fault, cur.volume, self.rng)
        if result == "finished":
            self._emit(EventName.playback_finished, reason=reason, **fields)
        elif result == "stopped":
            self._emit(EventName.playback_stopped, reason=reason, **fields)
        else:
            self._emit(EventName.playback_failed, reason=reason, **fields)
        record = self._record(entry, result if result == "finished" else str(reason), cur.actual_start)
        record.update(volume=cur.volume, played_ms=round((min(self.clock(), cur.end) - cur.actual_start) * 1000),
                      event=("playback_finished" if result == "finished" else f"playback_{result}"),
                      reason=reason, output_lufs=fields.get("output_lufs"))
        if entry.item.stream is not None:
            record.update(first_audio_at=ts(cur.first_audio_at) if cur.first_audio_at is not None else None,
                          stream_bytes=cur.stream_bytes)
        self._record_play(record)
        run = entry.run
        if run is not None and run is self.alert and result == "finished":
            if run.n < run.args.repeat:  # the next repeat, after the gap
                run.n += 1
                run.entry = self._alert_entry(run, run.n, cur.end + run.args.gap_ms / 1000.0,
                                              ALERT_REPEAT_WINDOW_MS)
            else:
                self.alert = None

    def _fail_unplayed(self, entry: Entry, reason: str) -> None:
        log.warning("%s: item %s not played: %s", self.node_id, entry.item.id, reason)
        self._emit(EventName.playback_failed, reason=reason, **self._fields(entry))
        self._record_play({**self._record(entry, reason, None), "event": "playback_failed", "reason": reason})

    def _report_interrupted(self, record: dict[str, Any]) -> None:
        """At boot: the previous run lost power while playing this item."""
        record = {**record, "result": "interrupted", "event": "playback_failed", "reason": "interrupted"}
        self._emit(
            EventName.playback_failed,
            plan_version=record.get("plan_version"),
            item_id=record.get("item_id"),
            schedule_id=record.get("schedule_id"),
            sha256=record.get("sha256"),
            scheduled_start=record.get("scheduled_start"),
            actual_start=record.get("actual_start"),
            offset_ms=record.get("offset_ms"),
            priority=record.get("priority"),
            drill=record.get("drill"),
            command_id=record.get("command_id"),
            alert_id=record.get("alert_id"),
            reason="interrupted",
        )
        self._record_play(record)

    def _record(self, entry: Entry, result: str, actual: float | None) -> dict[str, Any]:
        item = entry.item
        return {
            "node_id": self.node_id,
            "item_id": item.id,
            "schedule_id": item.schedule_id,
            "plan_version": entry.plan_version,
            "priority": item.priority.value,
            "sha256": entry.sha,
            "stream_url": item.stream.url if item.stream is not None else None,
            "scheduled_start": item.start,
            "actual_start": ts(actual) if actual is not None else None,
            "offset_ms": round((actual - entry.start) * 1000) if actual is not None else None,
            "duration_ms": item.duration_ms,
            "drill": item.drill,
            "alert_id": entry.run.args.alert_id if entry.run else None,
            "command_id": entry.run.command_id if entry.run else None,
            "result": result,
        }

    def _record_play(self, record: dict[str, Any]) -> None:
        if not self.halted:
            self.io.record(record)

    def stream_error(self, playing: Playing, error: str) -> None:
        """The driver could not reach a stream that is playing: reported on the item's end event."""
        playing.stream_error = short(f"stream unreachable: {error}")

    def stream_ended(self, playing: Playing) -> None:
        """The server closed an alert's stream cleanly after sending audio (a live page that ended, §7.6): the
        item is over — ``playback_finished`` now, not at the end of its ``duration_ms``. A plan item's relay (a
        radio) is retried instead, within its time."""
        if self.current is playing and playing.entry.run is not None and playing.first_audio_at is not None:
            playing.end, playing.cut_by_end_at = min(playing.end, self.clock()), False  # the next step ends it

    # ----------------------------------------------------------------------------------- media

    def media_todo(self, now: float | None = None) -> tuple[list[tuple[str, Media]], float]:
        """Media to fetch now (each marked in flight until :meth:`media_result`), and the seconds until the next
        retry is due. Retries go on until the last window needing the file closes, not only until its start:
        an emergency planned "now" is due before its file can be here, and plays late."""
        if now is None:
            now = self.clock()
        self._report_ready()  # items whose file is already held (a new plan, a reboot)
        needed: dict[str, tuple[Entry, float]] = {}
        for entry in [*self._alert_entries(), *self.entries]:  # an alert first: failures are its
            sha = entry.sha
            if sha is None or sha in self.verified or entry.key in self.handled:
                continue
            first, deadline = needed.get(sha, (entry, entry.deadline))
            needed[sha] = (first, max(deadline, entry.deadline))
        todo: list[tuple[str, Media]] = []
        next_due = self.max_idle_s * 5
        for sha, (entry, deadline) in needed.items():
            if now > deadline:
                continue  # too late: step() reports media_unavailable
            st = self.fetch.get(sha)
            if st is None:
                st = self.fetch[sha] = FetchState()
            if st.running:
                continue
            if st.next_attempt <= now:
                st.retry_now = False  # this attempt is the retry asked for
                st.running = True
                st.entry = entry
                assert entry.item.media is not None
                todo.append((sha, entry.item.media))
            else:
                next_due = min(next_due, st.next_attempt - now)
        return todo, max(0.05, next_due)

    def media_result(self, sha: str, error: str | None) -> None:
        """The attempt :meth:`media_todo` asked for ended: verified (``error`` is ``None``, the driver checked the
        bytes with :func:`verify_media`) or failed with ``error``."""
        st = self.fetch.get(sha)
        if error is None:
            self.verified.add(sha)
            self.fetch.pop(sha, None)
            self._report_ready()
            self.io.persist()
            return
        if st is None:
            return  # no longer needed (a new plan dropped it)
        st.running = False
        entry = st.entry
        st.attempts += 1
        jitter = 0.0 if st.retry_now else self.rng.uniform(0.8, 1.2)  # resync while in flight: again now
        st.next_attempt = self.clock() + st.delay * jitter
        # Report the first failure and every change of reason, not every retry.
        if error != st.last_reason and entry is not None:
            fields = self._fields(entry)
            del fields["scheduled_start"]
            self._emit(EventName.media_failed, **fields,
                       reason=f"{error} (attempt {st.attempts}, retry in {st.delay:.0f} s)")
        st.last_reason = error
        st.delay = min(st.delay * 2, MEDIA_RETRY_MAX_S)
        run = self.alert
        if (run is not None and run.entry is not None and run.entry.sha == sha and not run.acked
                and st.attempts >= ALERT_FETCH_ATTEMPTS and run.entry.key not in self.handled):
            # play_now is answered quickly: after a few attempts the panel hears "error", not silence.
            self.handled.add(run.entry.key)
            self._fail_unplayed(run.entry, "media_unavailable")
            run.acked = True
            self._ack(run.command_id, AckStatus.error, error=short(f"media unavailable: {error}"))
            self.alert = None

    def report_ready(self) -> None:
        """Report ``media_ready`` for items whose file is already held (a driver calls it after fetching)."""
        self._report_ready()

    def _report_ready(self) -> None:
        """One media_ready per item identity (persisted, so not again after a reboot or in a newer plan
        version), for items without an outcome whose file is verified."""
        for entry in self._all_entries():
            sha = entry.sha
            if sha is None:
                continue  # a stream has nothing to download
            if sha in self.verified and entry.key not in self.ready_reported and entry.key not in self.handled:
                self.ready_reported.add(entry.key)
                fields = self._fields(entry)
                del fields["scheduled_start"]
                self._emit(EventName.media_ready, **fields)
