"""The panel's core: the state every service module shares (database, configuration, signing key, publisher,
media store) and the few primitives they all use (audit, zones by reference, text limits, local time).

The concern modules above it (broadcaster/accounts.py, announcements.py, airtime.py, publication.py, nodes.py,
ingest.py, fleet.py, emergency.py…) take the panel as a :class:`PanelCore`; broadcaster/services.py composes
them into ``PanelService``. Nothing here imports a module above it.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from audio import MediaStore
from audio.normalize import DEFAULT_ABBREVIATIONS, normalize
from broadcaster.broker_admin import BrokerRegistry, NullBrokerRegistry
from broadcaster.config import Config
from broadcaster.db import Database
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Abbreviation,
    Announcement,
    AuditEntry,
    CommandRecord,
    Node,
    User,
    Zone,
)
from broadcaster.publication_queue import PublicationQueue
from broadcaster.scope import Scope, is_province
from devices import protocol as proto
from schedules.timeutil import to_local

log = logging.getLogger(__name__)

class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...


@dataclass
class MemoryPublisher:
    """Records publications; used when no broker is attached (unit tests, CLI tools)."""

    messages: list[tuple[str, bytes, int, bool]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.messages.append((topic, payload, qos, retain))


class PanelCore(ABC):
    """The shared state and primitives of the panel's services (see the module docstring)."""

    def __init__(self, config: Config, db: Database, signing_key: Ed25519PrivateKey) -> None:
        self.config = config
        self.db = db
        self.signing_key = signing_key
        self.public_key_b64 = proto.public_key_b64(signing_key)
        self.topics = proto.Topics(config.MQTT_PREFIX)
        self.publisher: Publisher = MemoryPublisher()
        #: The broker's logins follow the registry through this (broadcaster/broker_admin.py); app.start_services
        #: attaches the real one when the panel manages its broker.
        self.broker_registry: BrokerRegistry = NullBrokerRegistry()
        self.media = MediaStore(config.MEDIA_DIR)
        self.horizon = timedelta(hours=config.PLAN_HORIZON_HOURS)
        self._plan_lock = threading.Lock()  # plan versions must not interleave between threads
        #: Set while no plan is being published: the ingest worker holds proof-of-play back meanwhile, so
        #: that a province-wide plan change does not share the interpreter with storing its own echoes.
        self.publication_idle = threading.Event()
        self.publication_idle.set()
        self._publishing = 0
        self._publishing_lock = threading.Lock()
        #: Events go to SQLite as plain tuples through the driver (see ``_ingest_events``); False takes the
        #: portable SQLAlchemy path that PostgreSQL uses (a test checks that both store the same rows).
        self.raw_sqlite_ingest = True
        #: Node messages dropped by ingest, by reason: ``invalid`` (refused by docs/protocol.md §4/§6/§12: a
        #: field out of bounds, malformed JSON, node id ≠ topic), ``error`` (decoding failed otherwise),
        #: ``unstorable`` (its own store failed after the batch's did). Each is logged; the rest of the batch is kept.
        self.ingest_dropped: Counter[str] = Counter()
        #: node id → when (monotonic seconds) its last plan request was answered (broadcaster/ingest.py).
        self.plan_requests_answered: dict[str, float] = {}
        #: (ward id, item id) of airings whose "not heard" the ward was already told of (broadcaster/ingest.py):
        #: once per airing, however many batches its nodes' events come in, and never again for a resent event.
        self.not_heard_told: OrderedDict[tuple[int | None, str], None] = OrderedDict()
        #: This process's live paging sessions by id (broadcaster/live.py: the audio is relayed from memory).
        self.live_by_id: dict[str, Any] = {}
        #: Set by app.start_services: plan changes made by requests are published by its thread
        #: (:meth:`publish_plans_soon`); None (unit tests, CLI tools): published at once.
        self.publication_queue: PublicationQueue | None = None

    @staticmethod
    def audit(s: Session, user: User | None, action: str, target: str = "", *, ward_id: int | None = None,
               **detail: Any) -> None:
        """An audit entry; it belongs to ``ward_id``, else to the acting ward user's ward (province: none)."""
        if ward_id is None and user is not None and not is_province(user):
            ward_id = user.ward_id
        s.add(AuditEntry(user_id=user.id if user else None, action=action, target=target, detail=detail,
                         ward_id=ward_id))

    def zone_by_ref(self, s: Session, ref: int | str | None, scope: Scope | None = None) -> Zone | None:
        """A zone by code or id; one the scope does not see is unknown (404, and nothing is created)."""
        if ref is None or ref == "":
            return None
        zone = s.get(Zone, ref) if isinstance(ref, int) else s.scalar(select(Zone).where(Zone.code == ref))
        if zone is None and isinstance(ref, str) and ref.isdigit():
            zone = s.get(Zone, int(ref))
        if zone is None or (scope is not None and not scope.sees(zone.ward_id)):
            raise ServiceError("unknown_zone", f"no zone {ref!r}", "zone", 404)
        return zone

    def validate_text(self, title: str, text: str) -> tuple[str, str]:
        title = (title or "").strip()
        text = (text or "").strip()
        if not title:
            raise ServiceError("title_required", "title is required", "title")
        if len(title) > 300:
            raise ServiceError("title_too_long", "title is longer than 300 characters", "title")
        if not text:
            raise ServiceError("text_required", "announcement text is empty", "text")
        limit = self.config.MAX_TEXT_CHARS
        if len(text) > limit:
            raise ServiceError(
                "text_too_long", f"announcement text has {len(text)} characters; the limit is {limit}", "text"
            )
        return title, text

    def get_node(self, node_id: str, scope: Scope | None = None) -> Node | None:
        """The node, or None (also for a node of a ward the scope does not see)."""
        with self.db.session() as s:
            node = s.scalar(select(Node).options(selectinload(Node.zone)).where(Node.node_id == node_id))
            return node if node is not None and (scope is None or scope.sees(node.ward_id)) else None

    def get_announcement(self, announcement_id: int, scope: Scope | None = None) -> Announcement | None:
        """The announcement, or None (also for one of a ward the scope does not see)."""
        with self.db.session() as s:
            ann = s.scalar(
                select(Announcement)
                .options(selectinload(Announcement.media), selectinload(Announcement.created_by))
                .where(Announcement.id == announcement_id)
            )
            return ann if ann is not None and (scope is None or scope.sees(ann.ward_id)) else None

    def ward_abbreviations(self) -> dict[str, str]:
        with self.db.session() as s:
            return {a.abbr: a.expansion for a in s.scalars(select(Abbreviation))}

    def normalize_text(self, text: str) -> str:
        """The words the loudspeaker will say: default dictionary + this ward's own entries."""
        return normalize(text, abbreviations=self.ward_abbreviations())

    @staticmethod
    def default_abbreviations() -> dict[str, str]:
        return dict(DEFAULT_ABBREVIATIONS)

    def media_url(self, sha256: str) -> str:
        return f"{self.config.public_url}/media/{sha256}.mp3"

    def publish_plans_soon(self, node_ids: Iterable[str] | None) -> None:
        """After a change a person made (a schedule, an approval): the plans of ``node_ids`` are published by the
        background queue, so the request answers at once whatever the fleet size; at once without a queue."""
        if self.publication_queue is not None:
            self.publication_queue.request(node_ids)
        else:
            self.publish_plans(node_ids)

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Mark a fleet-wide publication (plans, an emergency's commands) in progress; see ``publication_idle``."""
        with self._publishing_lock:
            self._publishing += 1
            self.publication_idle.clear()
        try:
            yield
        finally:
            with self._publishing_lock:
                self._publishing -= 1
                if self._publishing == 0:
                    self.publication_idle.set()

    def local(self, moment: datetime | None) -> datetime | None:
        return to_local(moment, self.config.TIMEZONE) if moment else None

    # ---------------------------------------------------------------- operations of the layers above
    # The concern modules (users, announcements, schedules, fleet, emergency…) take the panel as a PanelCore and
    # call these; PanelService (broadcaster/services.py) composes the modules that implement them. So no module
    # imports the facade that imports it (issue 16: no import cycle).
    @abstractmethod
    def publish_plans(self, node_ids: Iterable[str] | None = None, *, force: bool = False,
                      now: datetime | None = None) -> list[str]:
        """Rebuild and publish the plans of ``node_ids`` (all if None): broadcaster/publication.py."""

    @abstractmethod
    def send_command(self, node_id: str, name: str, args: dict[str, Any] | None = None,
                     user: User | None = None) -> CommandRecord:
        """Sign and publish a command to one node: broadcaster/nodes.py."""

    @abstractmethod
    def render_announcement(self, announcement_id: int,
                            progress: Callable[[int], None] | None = None) -> Announcement:
        """Render the announcement's audio: broadcaster/announcements.py."""

    @abstractmethod
    def provision_broker_logins(self, credentials: dict[str, str]) -> None:
        """Give new nodes their broker login: broadcaster/nodes.py."""
