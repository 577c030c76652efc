"""Announcements: the text, its speech rendered in the background, lists, archive and restore,
and the ward's abbreviation dictionary the speech is read with (announcements & approval concern; the approval
workflow itself is broadcaster/approval.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from broadcaster import airtime, audio_settings, policy, tenancy
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import (
    Abbreviation,
    Announcement,
    Schedule,
    User,
)

log = logging.getLogger(__name__)

#: (service, announcement id) being rendered by a thread of this process (PanelService.render_in_background).
_RENDERING: set[tuple[int, int]] = set()


_RENDERING_LOCK = threading.Lock()


class Announcements(PanelCore):
    """The announcements part of the panel's services."""

    def list_abbreviations(self) -> list[Abbreviation]:
        with self.db.session() as s:
            return list(s.scalars(select(Abbreviation).order_by(Abbreviation.abbr)))

    def set_abbreviation(self, abbr: str, expansion: str, user: User | None = None) -> Abbreviation:
        policy.require(self, user, policy.Action.ABBREVIATIONS, target=f"abbr:{abbr}"[:120])
        tenancy.require_installation_wide(self, user, "abbreviations.set")
        abbr, expansion = (abbr or "").strip(), (expansion or "").strip()
        if not abbr or len(abbr) > 40 or any(c.isspace() for c in abbr):
            raise ServiceError("invalid_abbreviation", "abbreviation: 1–40 characters, no spaces", "abbr")
        if not expansion or len(expansion) > 300 or any(c in "0123456789" for c in expansion):
            raise ServiceError("invalid_expansion", "reading: 1–300 characters, written in words (no digits)",
                               "expansion")
        with self.db.session() as s:
            row = s.scalar(select(Abbreviation).where(Abbreviation.abbr == abbr))
            if row is None:
                row = Abbreviation(abbr=abbr, expansion=expansion)
                s.add(row)
            else:
                row.expansion = expansion
            self.audit(s, user, "abbreviation.set", abbr, expansion=expansion)
            return row

    def delete_abbreviation(self, abbr: str, user: User | None = None) -> None:
        policy.require(self, user, policy.Action.ABBREVIATIONS, target=f"abbr:{abbr}"[:120])
        tenancy.require_installation_wide(self, user, "abbreviations.set")
        with self.db.session() as s:
            row = s.scalar(select(Abbreviation).where(Abbreviation.abbr == abbr))
            if row is None:
                raise ServiceError("not_found", f"no abbreviation {abbr!r}", "abbr", 404)
            s.delete(row)
            self.audit(s, user, "abbreviation.delete", abbr)

    def create_announcement(
        self, title: str, text: str, user: User | None = None, *, audio_options: dict[str, Any] | None = None,
        ward: str | None = None, render: bool = True,
    ) -> Announcement:
        """Save the text, then render speech at once (never at play time).

        ``audio_options`` overrides the ward's audio defaults for this announcement (engine, voice, speed,
        repeat, gap_ms, intro_chime, outro_chime; see broadcaster/audio_settings.py). A render failure
        keeps the draft with ``render_error`` set; the caller shows it. ``render=False`` only saves the draft:
        the web page then renders it with :meth:`render_in_background` and shows the progress.
        """
        title, text = self.validate_text(title, text)
        options = audio_settings.validate_options(audio_options)
        with self.db.session() as s:
            w = tenancy.ward_for_new(s, user, ward)
            ann = Announcement(title=title, text=text, status="draft", created_by_id=user.id if user else None,
                               source="tts", audio_options=options or None, ward_id=w.id)
            s.add(ann)
            s.flush()
            self.audit(s, user, "announcement.create", str(ann.id), ward_id=w.id)
            ann_id = ann.id
        if not render:
            return self.get_announcement(ann_id)  # type: ignore[return-value]
        return self.render_announcement(ann_id)

    def render_announcement(self, announcement_id: int,
                            progress: Callable[[int], None] | None = None) -> Announcement:
        """Render (or find in the render cache) the announcement's audio: status ready, or draft with
        ``render_error``. Unchanged text and settings render nothing (broadcaster.audio_settings.render)."""
        return audio_settings.render(self, announcement_id, progress)

    #: A render whose progress has not moved for this long is taken as interrupted (the panel restarted).
    RENDER_STALE = timedelta(minutes=3)

    def render_in_background(self, announcement_id: int) -> threading.Thread | None:
        """Render in a thread of this process; ``render_progress`` (0–100) says how far it is, None when it has
        ended (``status`` ready, or ``render_error`` says why not). Speech takes seconds to a minute with gTTS:
        the page that started it shows the progress instead of waiting. One render per announcement at a time:
        None when one is already running. Each step is its own short transaction (fine on SQLite and PostgreSQL).
        """
        with _RENDERING_LOCK:
            if (id(self), announcement_id) in _RENDERING:
                return None
            _RENDERING.add((id(self), announcement_id))
        try:
            self.set_render_progress(announcement_id, 0, clear_error=True)
        except BaseException:
            with _RENDERING_LOCK:
                _RENDERING.discard((id(self), announcement_id))
            raise
        thread = threading.Thread(target=self._render_job, args=(announcement_id,), name=f"render-{announcement_id}",
                                  daemon=True)
        thread.start()
        return thread

    def _render_job(self, announcement_id: int) -> None:
        try:
            self.render_announcement(announcement_id,
                                     lambda percent: self.set_render_progress(announcement_id, percent))
        except Exception as exc:  # noqa: BLE001 — a thread has nobody to raise to: the draft keeps the reason
            log.exception("background render of announcement %s failed", announcement_id)
            reason = "busy: too many recordings are being processed; try again" if exc.__class__.__name__ == \
                "Busy" else f"{exc.__class__.__name__}: {exc}"
            try:
                with self.db.session() as s:
                    ann = s.get(Announcement, announcement_id)
                    if ann is not None:
                        ann.render_error = reason[:2000]
                        if not ann.media_sha256:
                            ann.status = "draft"
            except Exception:  # noqa: BLE001
                log.exception("could not record the render failure of announcement %s", announcement_id)
        finally:
            try:
                self.set_render_progress(announcement_id, None)
            except Exception:  # noqa: BLE001 — the database went away (shutdown): nothing more to do
                log.warning("could not clear the render progress of announcement %s", announcement_id)
            with _RENDERING_LOCK:
                _RENDERING.discard((id(self), announcement_id))

    def set_render_progress(self, announcement_id: int, percent: int | None, *, clear_error: bool = False) -> None:
        """Record how far speech production of an announcement is (``None``: no render running); the render
        thread calls it, the detail page and ``/status`` read it."""
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            if ann is None:
                return
            ann.render_progress = percent
            ann.updated_at = datetime.now(UTC)
            if clear_error:
                ann.render_error = None

    def render_state(self, ann: Announcement) -> dict[str, Any]:
        """Where speech production stands: ``rendering`` with ``progress``, ``ready``, ``failed`` (with ``error``)
        or ``none`` (no audio, nothing running — e.g. interrupted by a restart)."""
        progress = ann.render_progress
        if progress is not None:
            with _RENDERING_LOCK:
                here = (id(self), ann.id) in _RENDERING
            updated = ann.updated_at or ann.created_at
            if here or (updated is not None and datetime.now(UTC) - updated < self.RENDER_STALE):
                return {"state": "rendering", "progress": max(0, min(100, progress)), "error": None}
        if ann.status == "ready" and ann.media_sha256:
            return {"state": "ready", "progress": 100, "error": None}
        if ann.render_error:
            return {"state": "failed", "progress": None, "error": ann.render_error}
        return {"state": "none", "progress": None, "error": None}

    def list_announcements(self, scope: tenancy.Scope | None = None, *, archived: bool | None = False,
                           search: str = "", approval: str = "") -> list[Announcement]:
        """Announcements, newest first. ``archived``: False hides the archived ("deleted") ones, True shows only
        them, None both; ``search`` finds words of the title or text (case-insensitive); ``approval`` one state."""
        with self.db.session() as s:
            q = select(Announcement).options(selectinload(Announcement.media)).order_by(Announcement.id.desc())
            if archived is not None:
                q = q.where(Announcement.archived_at.is_not(None) if archived else Announcement.archived_at.is_(None))
            if approval:
                q = q.where(func.coalesce(Announcement.approval, "draft") == approval)
            rows = list(s.scalars(scope.restrict(q, Announcement) if scope is not None else q))
        words = (search or "").casefold().split()
        if words:  # in Python: SQLite's lower() knows no Vietnamese capitals (Ư, Đ…)
            rows = [a for a in rows if all(w in f"{a.title}\n{a.text}".casefold() for w in words)]
        return rows

    def announcement_in_use(self, s: Session, announcement_id: int, now: datetime | None = None) -> list[int]:
        """Ids of the active schedules that will still play the announcement (an airing at or after ``now``)."""
        now = now or datetime.now(UTC)
        today = self.local(now).date()  # type: ignore[union-attr]
        used: list[int] = []
        for sched in s.scalars(select(Schedule).where(Schedule.status == "active", Schedule.archived_at.is_(None))):
            if announcement_id not in airtime.announcement_ids(airtime.programme(sched)):
                continue
            if sched.expires_at is not None and sched.expires_at <= now:
                continue
            if sched.recurrence:
                until = (sched.recurrence or {}).get("until")
                if until and str(until)[:10] < today.isoformat():
                    continue
            elif sched.start_at < now:
                continue
            used.append(sched.id)
        return used

    def archive_announcement(self, announcement_id: int, user: User | None = None) -> Announcement:
        """"Delete" with undo: the announcement is archived (hidden from the lists, never in a plan, cannot be
        scheduled) until restored. Refused (409 ``announcement_in_use``) while an active schedule will still play
        it: cancel that schedule first, so nothing silently stops playing. Its author or a leader may do it."""
        self._archive_target(announcement_id, user)
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            assert ann is not None
            if ann.archived_at is not None:
                return self.get_announcement(announcement_id)  # type: ignore[return-value]
            used = self.announcement_in_use(s, announcement_id)
            if used:
                raise ServiceError("announcement_in_use", f"schedule(s) {', '.join(map(str, used))} will still play "
                                   "this announcement: cancel them first", "announcement_id", 409)
            ann.archived_at = datetime.now(UTC)
            ann.archived_by_id = user.id if user else None
            self.audit(s, user, "announcement.archive", str(announcement_id), ward_id=ann.ward_id)
        return self.get_announcement(announcement_id)  # type: ignore[return-value]

    def restore_announcement(self, announcement_id: int, user: User | None = None) -> Announcement:
        """Undo an archive: the announcement is back in the lists, as it was (approval unchanged)."""
        self._archive_target(announcement_id, user)
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            assert ann is not None
            if ann.archived_at is not None:
                ann.archived_at = None
                ann.archived_by_id = None
                self.audit(s, user, "announcement.restore", str(announcement_id), ward_id=ann.ward_id)
        return self.get_announcement(announcement_id)  # type: ignore[return-value]

    def _archive_target(self, announcement_id: int, user: User | None) -> None:
        """404 for an unknown announcement (or another ward's), then the release policy (author or leader)."""
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            if ann is None:
                raise ServiceError("not_found", "no such announcement", status=404)
            tenancy.check_user(user, ann.ward_id, "announcement")
            author = ann.created_by_id
        policy.announcement_archive_check(self, user, author, announcement_id)
