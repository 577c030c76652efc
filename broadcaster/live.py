"""Live paging (issue 17 §1): a leader speaks into her phone or PC and the chosen zones hear her live.

The browser captures the microphone (``getUserMedia`` + ``MediaRecorder``, WebM/Opus) and sends the recorder's
chunks to the panel as they come (``POST …/audio``); the panel relays them as one live HTTP audio stream
(``GET /live/<id>/<key>.webm``, chunked). Audio never travels over MQTT: the nodes get a signed ``play_now`` whose
source is that stream (docs/protocol.md §7.6, §7.9) — the same stream path as a radio relay, with pre-emption by
priority. Ending the session closes the stream: a node that reads its end finishes the item
(``playback_finished``: the session's proof of play); a ``stop`` of that alert follows for any that did not.

States (:data:`STATES`): ``connecting`` (created, the nodes told, waiting for the first audio), ``live`` (audio
flows), ``ended`` (``DELETE``), ``failed`` (with why: no audio in time, the speaker's connection gone, every node
refused the ``play_now``). One session at a time per loudspeaker (another one to the same nodes: 409). A node
that joins in the first seconds gets the stream from its first byte (the chime); later, the header and then the
newest WebM cluster, so live stays live. When it ends the session is recorded as an announcement (the upload
chain, ``source`` ``upload``) for the archive.

A session lives in the memory of the process that created it (the audio is relayed from there): with several
panel processes (``serve --workers N``) a live session needs sticky routing to one of them — not done here.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from broadcaster import audio_settings, policy, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import CommandRecord, Node, User, Zone
from devices import protocol as proto

log = logging.getLogger(__name__)

STATES = ("connecting", "live", "ended", "failed")
PRIORITIES = ("normal", "priority")
#: The longest a live session may last: the nodes relay the stream for at most this long.
MAX_LIVE_MS = 15 * 60 * 1000
#: Without a first chunk of audio this long after the start, the session fails ("no audio from the microphone").
FIRST_AUDIO_TIMEOUT_S = 20.0
#: Without a new chunk this long while live, the speaker's connection is taken as lost and the session fails.
SILENCE_TIMEOUT_S = 15.0
#: The most audio one session keeps (MediaRecorder's Opus is ~4 kB/s: 15 minutes fit in under 8 MB).
MAX_LIVE_BYTES = 16 * 1024 * 1024
#: How long a finished session stays readable (GET) in memory.
KEEP_ENDED_S = 3600.0
#: A node that joins the stream later than this after the first audio starts at the newest WebM cluster (after
#: the header), not at the beginning: live stays live (a reconnect does not replay what was said meanwhile).
JOIN_FROM_START_S = 3.0
#: After the stream closed, the nodes get ``stop`` this much later: a node that read the end of the stream has
#: finished the item by then (``playback_finished``), the stop is for one that did not.
STOP_GRACE_S = 3.0
#: The WebM (Matroska) Cluster element id: where a player may start decoding.
CLUSTER_ID = b"\x1f\x43\xb6\x75"


@dataclass
class LiveSession:
    """One live page, in memory. ``data`` only grows; readers follow it under ``cond``."""

    id: str
    key: str
    zones: list[str]
    priority: str
    node_ids: list[str]
    user_id: int | None
    ward_id: int | None
    created_at: float = field(default_factory=time.time)
    state: str = "connecting"
    reason: str | None = None
    #: When the browser started sending (epoch seconds, its clock: the same machine in the latency test).
    client_started_at: float | None = None
    first_audio_at: float | None = None  # when the first chunk reached the panel
    last_audio_at: float | None = None
    ended_at: float | None = None
    data: bytearray = field(default_factory=bytearray)  # the whole recording so far
    clusters: list[int] = field(default_factory=list)  # offsets of the WebM clusters in ``data``
    command_ids: list[str] = field(default_factory=list)  # the play_now sent to each node
    announcement_id: int | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def size(self) -> int:
        return len(self.data)

    def append(self, chunk: bytes) -> None:
        """Add a recorder chunk (under ``cond``), noting where clusters start (an id split across two chunks
        too)."""
        start = max(0, len(self.data) - len(CLUSTER_ID) + 1)
        self.data += chunk
        at = self.data.find(CLUSTER_ID, start)
        while at != -1:
            self.clusters.append(at)
            at = self.data.find(CLUSTER_ID, at + 1)

    def join_offset(self, now: float) -> tuple[bytes, int]:
        """What a reader joining at ``now`` gets first, and from which offset it then follows: the beginning in
        the first seconds; later the header (all before the first cluster) and the newest cluster."""
        if (self.first_audio_at is None or now - self.first_audio_at <= JOIN_FROM_START_S
                or len(self.clusters) < 2):
            return b"", 0
        return bytes(self.data[: self.clusters[0]]), self.clusters[-1]

    @property
    def alert_id(self) -> str:
        return f"live-{self.id}"

    @property
    def finished(self) -> bool:
        return self.state in ("ended", "failed")


def session_json(session: LiveSession, public_url: str = "") -> dict[str, Any]:
    def ts(value: float | None) -> str | None:
        return proto.format_ts(datetime.fromtimestamp(value, UTC)) if value is not None else None

    return {
        "id": session.id, "state": session.state, "reason": session.reason, "zones": session.zones,
        "priority": session.priority, "nodes": session.node_ids, "created_at": ts(session.created_at),
        "client_started_at": ts(session.client_started_at), "first_audio_at": ts(session.first_audio_at),
        "ended_at": ts(session.ended_at), "bytes": session.size, "announcement_id": session.announcement_id,
        "alert_id": session.alert_id, "audio_url": f"/api/v1/live/{session.id}/audio",
        "stream_url": f"{public_url}/live/{session.id}/{session.key}.webm",
    }


class Live(PanelCore):
    """The live paging part of the panel's services."""

    def live_sessions(self) -> dict[str, LiveSession]:
        """This process's live sessions (finished ones are forgotten after an hour)."""
        sessions: dict[str, LiveSession] = self.live_by_id
        now = time.time()
        for sid in [k for k, v in sessions.items() if v.finished and now - (v.ended_at or now) > KEEP_ENDED_S]:
            sessions.pop(sid, None)
        return sessions

    def start_live(self, zones: list[str], priority: str = "priority", user: User | None = None) -> LiveSession:
        """Create a live session for ``zones`` (codes) and tell their nodes to relay its stream now.

        The release policy decides who may (``live.page``); emergencies are not spoken live (they go through the
        two-person emergency path). Nothing is sent when the request is refused."""
        if priority not in PRIORITIES:
            raise ServiceError("invalid_priority", f"priority must be one of {', '.join(PRIORITIES)} "
                               "(an emergency goes through POST /api/v1/emergencies)", "priority")
        if not zones or not isinstance(zones, list) or not all(isinstance(z, str) and z for z in zones):
            raise ServiceError("zones_required", "choose at least one zone", "zones")
        policy.require(self, user, policy.Action.LIVE_PAGE, policy.Scope.ANY, target=",".join(zones)[:120])
        scope = tenancy.user_scope(user)
        with self.db.session() as s:
            found = {z.code: z for z in s.scalars(select(Zone).where(Zone.code.in_(set(zones))))}
            missing = [z for z in zones if z not in found or (scope is not None and not scope.sees(found[z].ward_id))]
            if missing:
                raise ServiceError("unknown_zone", f"no zone {missing[0]!r}", "zones", 404)
            node_ids = sorted(s.scalars(select(Node.node_id).where(Node.zone_id.in_([found[z].id for z in zones]))))
            ward_ids = {found[z].ward_id for z in zones}
        if not node_ids:
            raise ServiceError("no_nodes", "no loudspeaker in these zones", "zones", 409)
        busy = [x for x in self.live_sessions().values() if not x.finished and set(x.node_ids) & set(node_ids)]
        if busy:
            raise ServiceError("live_busy", "another live session is speaking to these loudspeakers: end it first",
                               "zones", 409)
        session = LiveSession(id=secrets.token_hex(6), key=secrets.token_urlsafe(18), zones=list(zones),
                              priority=priority, node_ids=node_ids, user_id=user.id if user else None,
                              ward_id=next(iter(ward_ids)) if len(ward_ids) == 1 else None)
        args = {"alert_id": session.alert_id, "priority": priority, "repeat": 1, "title": "Phát trực tiếp",
                "stream": {"url": session_json(session, self.config.public_url)["stream_url"],
                           "duration_ms": MAX_LIVE_MS}}
        self.live_sessions()[session.id] = session
        with self.db.session() as s:
            self.audit(s, user, "live.start", session.id, ward_id=session.ward_id, zones=zones, priority=priority,
                       nodes=len(node_ids))
        for node_id in node_ids:
            session.command_ids.append(self.send_command(node_id, "play_now", args, user).id)
        threading.Thread(target=self._watch_live, args=(session,), daemon=True, name=f"live-{session.id}").start()
        return session

    def get_live(self, session_id: str, user: User | None = None) -> LiveSession:
        """A session, for those the release policy lets speak live (its stream URL is a secret)."""
        policy.require(self, user, policy.Action.LIVE_PAGE, policy.Scope.ANY, target=f"live:{session_id}"[:120])
        session = self.live_sessions().get(session_id)
        scope = tenancy.user_scope(user)
        if session is None or (scope is not None and session.ward_id is not None and not scope.sees(session.ward_id)):
            raise ServiceError("not_found", f"no live session {session_id!r}", status=404)
        return session

    def live_audio(self, session_id: str, chunk: bytes, user: User | None = None,
                   client_started_ms: int | None = None) -> LiveSession:
        """One chunk of the speaker's recording: relayed at once to every node listening."""
        session = self.get_live(session_id, user)
        if session.user_id is not None and (user is None or user.id != session.user_id):
            raise ServiceError("forbidden", "only the person who started it speaks in a live session", status=403)
        if session.finished:
            raise ServiceError("live_finished", f"the live session is {session.state}", status=409)
        if session.size + len(chunk) > MAX_LIVE_BYTES:
            self._finish_live(session, "failed", "too long: the recording limit was reached")
            raise ServiceError("live_too_long", "the live session reached its size limit", status=413)
        now = time.time()
        with session.cond:
            if client_started_ms is not None and session.client_started_at is None:
                session.client_started_at = client_started_ms / 1000.0
            if chunk:
                session.append(chunk)
                session.last_audio_at = now
                if session.first_audio_at is None:
                    session.first_audio_at = now
                    session.state = "live"
            session.cond.notify_all()
        return session

    def end_live(self, session_id: str, user: User | None = None) -> LiveSession:
        """End it: the nodes stop, the stream closes, the recording is kept as an announcement."""
        session = self.get_live(session_id, user)
        if not session.finished:
            self._finish_live(session, "ended", None, user)
        return session

    def live_stream(self, session_id: str, key: str) -> Iterator[bytes]:
        """The relay a node plays: every chunk from the first, then each new one as it comes, until the end.
        ``key`` is the session's secret (the URL is a capability: nodes send no credentials to streams)."""
        session = self.live_sessions().get(session_id)
        if session is None or not secrets.compare_digest(session.key, key):
            raise ServiceError("not_found", "no such live stream", status=404)
        return self._follow(session)

    @staticmethod
    def _follow(session: LiveSession) -> Iterator[bytes]:
        with session.cond:
            header, sent = session.join_offset(time.time())
        if header:
            yield header
        while True:
            with session.cond:
                while sent >= len(session.data) and not session.finished:
                    session.cond.wait(1.0)
                fresh = bytes(session.data[sent:])
                done = session.finished
            if fresh:
                yield fresh
            sent += len(fresh)
            if done and sent >= len(session.data):
                return

    def _watch_live(self, session: LiveSession) -> None:
        """Fail a session whose audio never came or stopped coming (the speaker's phone lost its connection)."""
        while not session.finished:
            time.sleep(0.5)
            now = time.time()
            refused = self._refusals(session)
            if refused is not None:
                self._finish_live(session, "failed", f"no loudspeaker took it: {refused}")
            elif session.first_audio_at is None and now - session.created_at > FIRST_AUDIO_TIMEOUT_S:
                self._finish_live(session, "failed", "no audio from the microphone")
            elif session.last_audio_at is not None and now - session.last_audio_at > SILENCE_TIMEOUT_S:
                self._finish_live(session, "failed", "the speaker's connection was lost")
            elif now - session.created_at > MAX_LIVE_MS / 1000:
                self._finish_live(session, "ended", "the longest live session is over")

    def _refusals(self, session: LiveSession) -> str | None:
        """When every node answered the play_now and none took it (quiet hours, a higher alert, offline until it
        expired): the first reason; None while one plays or may still."""
        with self.db.session() as s:
            rows = s.execute(select(CommandRecord.status, CommandRecord.error)
                             .where(CommandRecord.id.in_(session.command_ids))).all()
        if len(rows) < len(session.command_ids) or any(st in ("pending", "ok") for st, _ in rows):
            return None
        return next((err for _, err in rows if err), None) or rows[0][0]

    def _finish_live(self, session: LiveSession, state: str, reason: str | None, user: User | None = None) -> None:
        with session.cond:
            if session.finished:
                return
            session.state, session.reason, session.ended_at = state, reason, time.time()
            session.cond.notify_all()
        with self.db.session() as s:
            self.audit(s, user, f"live.{state}", session.id, ward_id=session.ward_id, reason=reason,
                       bytes=session.size)
        # The stream is closed: a node that read its end finishes the item (playback_finished, its proof of
        # play); the stop follows for any that did not — at once when nothing was ever said.
        delay = STOP_GRACE_S if session.first_audio_at is not None else 0.0
        stopper = threading.Timer(delay, self._stop_nodes, args=(session, user.id if user else None))
        stopper.daemon = True
        stopper.start()
        if session.data:
            threading.Thread(target=self._record_live, args=(session,), daemon=True,
                             name=f"live-record-{session.id}").start()

    def _user(self, user_id: int | None) -> User | None:
        """A user read again by id, for work done outside the request (a timer, a background thread)."""
        if user_id is None:
            return None
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is not None:
                s.expunge(user)
            return user

    def _stop_nodes(self, session: LiveSession, user_id: int | None) -> None:
        user = self._user(user_id)
        for node_id in session.node_ids:
            try:
                self.send_command(node_id, "stop", {"alert_id": session.alert_id}, user)
            except ServiceError:  # a node deleted meanwhile: nothing to stop there
                log.warning("live %s: could not stop %s", session.id, node_id)

    def _record_live(self, session: LiveSession) -> None:
        """Keep what was said as an announcement by its speaker (archive, proof): the upload chain decodes the
        WebM/Opus recording like any uploaded file."""
        user = self._user(session.user_id)
        when = datetime.fromtimestamp(session.first_audio_at or session.created_at, UTC)
        title = f"Phát trực tiếp {self.local(when):%H:%M %d/%m/%Y}"
        try:
            ann = audio_settings.create_recording(self, title, bytes(session.data), "live.webm", user,
                                                  text=f"Phát trực tiếp tới {', '.join(session.zones)}")
            session.announcement_id = ann.id
        except Exception:  # noqa: BLE001 — a recording that cannot be kept never undoes the broadcast
            log.exception("live %s: the recording could not be kept", session.id)
