"""Ethnic-minority language versions of an announcement (issue 17 §3).

A zone lists the languages its residents need, in order (``zones.languages``; Vietnamese only by default). An
announcement is its Vietnamese version; :class:`~broadcaster.models.AnnouncementVersion` rows add the others, each
with its own text and audio and **its own approval** (the same approval machine and the same rule as the
announcement's: only the exact audio a leader approved plays). Where no speech engine speaks the language — all but
Vietnamese here (broadcaster/languages.py) — the version is an uploaded recording through the upload chain.

A zone's plan plays, for each airing of the announcement, its versions in the zone's order (broadcaster/airtime.py
``slot_items``); a version that is missing, without audio or not approved is left out of the airing and
:meth:`Versions.missing_versions` says so before it airs. Each version is its own plan item, so its proof of play
is its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audio_settings, languages, notifications, policy, tenancy
from broadcaster.airtime import affected_nodes_for_announcement, programme
from broadcaster.core import PanelCore
from broadcaster.errors import ServiceError
from broadcaster.models import Announcement, AnnouncementVersion, Media, Schedule, User, Zone
from broadcaster.states import APPROVAL, ApprovalState


def version_json(v: AnnouncementVersion, media_url: Any) -> dict[str, Any]:
    media = v.media
    return {
        "language": v.language, "name": languages.name(v.language), "text": v.text, "source": v.source,
        "media": ({"sha256": media.sha256, "bytes": media.size, "duration_ms": media.duration_ms,
                   "content_type": media.content_type, "url": media_url(media.sha256)} if media else None),
        "approval": v.approval, "approval_comment": v.approval_comment, "playable": policy.version_playable(v),
    }


class Versions(PanelCore):
    """The language-version part of the panel's services."""

    def _version_target(self, s: Session, announcement_id: int, user: User | None) -> Announcement:
        ann = s.get(Announcement, announcement_id)
        scope = tenancy.user_scope(user)
        if ann is None or (scope is not None and not scope.sees(ann.ward_id)):
            raise ServiceError("not_found", "no such announcement", status=404)
        if ann.archived_at is not None:
            raise ServiceError("announcement_archived", "the announcement is deleted (archived); restore it first",
                               "announcement_id", 409)
        return ann

    def save_version(self, announcement_id: int, language: str, text: str = "", user: User | None = None, *,
                     recording: bytes | None = None, filename: str = "",
                     media_sha256: str | None = None) -> AnnouncementVersion:
        """Add or change one language version: its text and/or its recording. A change of the audio sends it
        (back) to the leaders for approval; without audio it stays a draft (it cannot air yet)."""
        policy.require(self, user, policy.Action.ANNOUNCEMENT_WRITE, target=f"announcement:{announcement_id}")
        code = languages.check_code(language)
        if code == languages.VIETNAMESE:
            raise ServiceError("vietnamese_is_the_announcement", "the Vietnamese version is the announcement itself: "
                               "edit the announcement", "language", 409)
        text = (text or "").strip()
        if len(text) > self.config.MAX_TEXT_CHARS:
            raise ServiceError("text_too_long", "the text is too long", "text")
        with self.db.session() as s:
            self._version_target(s, announcement_id, user)  # 404 before any audio work
        sha = None
        if recording is not None:
            sha, _original, _key = audio_settings.master_recording(self, recording, filename)
        elif media_sha256 is not None:  # audio already in the panel (an uploaded recording), by its sha256
            with self.db.session() as s:
                if s.get(Media, media_sha256) is None or not self.media.exists(media_sha256, "mp3"):
                    raise ServiceError("unknown_media", "no audio with this sha256 in the panel: upload the "
                                       "recording (multipart 'file')", "media", 404)
            sha = media_sha256
        elif not text:
            raise ServiceError("text_or_recording_required", "give the version's text, its recording, or both",
                               "text")
        with self.db.session() as s:
            ann = self._version_target(s, announcement_id, user)
            version = s.scalar(select(AnnouncementVersion).where(AnnouncementVersion.announcement_id == ann.id,
                                                                 AnnouncementVersion.language == code))
            created = version is None
            if version is None:
                version = AnnouncementVersion(announcement_id=ann.id, language=code, text=text,
                                              created_by_id=user.id if user else None, approval="draft")
                s.add(version)
            elif text:
                version.text = text
            audio_changed = sha is not None and sha != version.media_sha256
            if sha is not None:
                version.media_sha256, version.source = sha, "upload"
            state = APPROVAL.state(version.approval)
            if audio_changed and state != ApprovalState.SUBMITTED:
                APPROVAL.move(version, "approval", "void" if APPROVAL.allows(version.approval, "void") else "submit")
            s.flush()
            self.audit(s, user, "announcement.version", str(ann.id), ward_id=ann.ward_id, language=code,
                       created=created, audio=sha, to=version.approval)
            told = SimpleNamespace(id=ann.id, title=f"{ann.title} · {languages.name(code)}", ward_id=ann.ward_id)
            version_id, waiting = version.id, version.approval == ApprovalState.SUBMITTED and audio_changed
            affected = affected_nodes_for_announcement(s, ann.id)
        if waiting:
            notifications.submitted(self, told, user)  # the approvers are told
        self.publish_plans_soon(affected)  # a changed version leaves the plans until it is approved again
        return self.get_version(version_id)

    def get_version(self, version_id: int) -> AnnouncementVersion:
        with self.db.session() as s:
            version = s.get(AnnouncementVersion, version_id)
            if version is None:
                raise ServiceError("not_found", "no such version", status=404)
            s.expunge(version)
            return version

    def review_version(self, announcement_id: int, language: str, approve: bool, user: User | None = None,
                       comment: str = "") -> AnnouncementVersion:
        """A leader approves (or rejects, with why) one language version, on its own."""
        policy.require(self, user, policy.Action.ANNOUNCEMENT_APPROVE, target=f"announcement:{announcement_id}")
        code = languages.check_code(language)
        comment = (comment or "").strip()
        if not approve and not comment:
            raise ServiceError("comment_required", "say why it is rejected", "comment")
        with self.db.session() as s:
            ann = self._version_target(s, announcement_id, user)
            version = s.scalar(select(AnnouncementVersion).where(AnnouncementVersion.announcement_id == ann.id,
                                                                 AnnouncementVersion.language == code))
            if version is None:
                raise ServiceError("not_found", f"no {code} version", "language", 404)
            if approve and not version.media_sha256:
                raise ServiceError("version_without_audio", "upload the recording of this version first",
                                   "language", 409)
            event = "approve" if approve else "reject"
            if not APPROVAL.allows(version.approval, event):
                raise ServiceError("invalid_transition", f"a version that is {version.approval} cannot be "
                                   f"{event}d", "language", 409)
            before = version.approval
            APPROVAL.move(version, "approval", event)
            version.reviewed_by_id, version.reviewed_at = (user.id if user else None), datetime.now(UTC)
            version.approval_comment = comment or None
            version.approved_media_sha256 = version.media_sha256 if approve else None
            self.audit(s, user, f"announcement.version_{event}", str(ann.id), ward_id=ann.ward_id, language=code,
                       **{"from": before, "to": version.approval}, comment=comment)
            version_id = version.id
            affected = affected_nodes_for_announcement(s, ann.id)
        self.publish_plans_soon(affected)
        return self.get_version(version_id)

    def missing_versions(self, announcement_id: int) -> list[dict[str, Any]]:
        """Before it airs: the languages its zones need (active schedules of it, also inside programmes) that
        will not play — no version, no recording yet, or not approved — with the zones that need them."""
        with self.db.session() as s:
            ann = s.get(Announcement, announcement_id)
            if ann is None:
                return []
            versions = {v.language: v for v in ann.versions}
            needed: dict[str, list[str]] = {}
            scheds = s.scalars(select(Schedule).where(Schedule.status == "active", Schedule.archived_at.is_(None)))
            for sched in scheds:
                if not any(i.get("announcement_id") == announcement_id for i in programme(sched)):
                    continue
                for zone in sched.zones:
                    for code in languages.of_zone(zone.languages):
                        if code != languages.VIETNAMESE:
                            needed.setdefault(code, [])
                            if zone.code not in needed[code]:
                                needed[code].append(zone.code)
        out = []
        for code, zones in needed.items():
            v = versions.get(code)
            reason = ("missing" if v is None else "no_audio" if not v.media_sha256
                      else None if policy.version_playable(v) else "not_approved")
            if reason is not None:
                out.append({"language": code, "name": languages.name(code), "zones": sorted(zones),
                            "reason": reason})
        return sorted(out, key=lambda m: m["language"])

    def set_zone_languages(self, code: str, codes: object, user: User | None = None) -> Zone:
        """The languages a zone's residents need, in the order they are played (the admin keeps the registry)."""
        policy.require(self, user, policy.Action.FLEET_MANAGE, target=f"zone:{code}")
        wanted = languages.check_list(codes)
        with self.db.session() as s:
            zone = self.zone_by_ref(s, code, tenancy.user_scope(user))
            assert zone is not None
            before = languages.of_zone(zone.languages)
            zone.languages = None if wanted == [languages.VIETNAMESE] else wanted
            self.audit(s, user, "zone.languages", zone.code, ward_id=zone.ward_id, **{"from": before, "to": wanted})
            nodes = [n.node_id for n in zone.nodes]
            s.flush()
            s.expunge(zone)
        self.publish_plans_soon(nodes)
        return zone
