"""Schemas made by ``create_all`` before migrations existed, by revision: their tables and columns.

``broadcaster.db.recognise_legacy`` stamps an unversioned database with the revision whose tables and columns it
has, then upgrades it. Only revisions that a ``create_all`` of released code could produce belong here; these
never change (tests/test_migrations.py checks them against the migrations themselves).
"""

from __future__ import annotations

LEGACY_SCHEMAS: dict[str, dict[str, frozenset[str]]] = {
    "0001_baseline": {
        "abbreviations": frozenset(["abbr", "created_at", "expansion", "id"]),
        "alert_deliveries": frozenset(["alert_id", "command_id", "id", "node_id", "sent_at", "stop_command_id"]),
        "alert_zones": frozenset(["alert_id", "zone_id"]),
        "alerts": frozenset(
            [
                "all_zones",
                "announcement_id",
                "cancel_alert_id",
                "cancelled_at",
                "cancelled_by_id",
                "cancels_id",
                "created_at",
                "created_by_id",
                "drill",
                "gap_ms",
                "id",
                "kind",
                "media_sha256",
                "released_at",
                "released_by_id",
                "repeat",
                "status",
                "text",
                "title",
                "volume",
            ]
        ),
        "announcements": frozenset(
            [
                "approval",
                "approval_comment",
                "audio_options",
                "created_at",
                "created_by_id",
                "engine",
                "id",
                "media_sha256",
                "normalized_text",
                "recording_sha256",
                "render_error",
                "render_key",
                "reviewed_at",
                "reviewed_by_id",
                "source",
                "status",
                "submitted_at",
                "submitted_by_id",
                "text",
                "title",
                "updated_at",
            ]
        ),
        "audio_settings": frozenset(
            [
                "bitrate",
                "engine_order",
                "id",
                "intro_chime",
                "lead_in_ms",
                "outro_chime",
                "speed",
                "target_lufs",
                "updated_at",
                "updated_by_id",
                "voice",
            ]
        ),
        "audit_log": frozenset(["action", "at", "detail", "id", "target", "user_id"]),
        "canned_media": frozenset(["created_at", "key", "media_sha256", "text"]),
        "commands": frozenset(
            ["acked_at", "args", "error", "expires_at", "id", "issued_at", "issued_by_id", "name", "node_id", "status"]
        ),
        "media": frozenset(
            ["content_type", "created_at", "duration_ms", "integrated_lufs", "sha256", "size", "true_peak_dbtp"]
        ),
        "node_events": frozenset(
            [
                "actual_start",
                "at",
                "epoch",
                "event",
                "id",
                "item_id",
                "node_id",
                "offset_ms",
                "plan_version",
                "reason",
                "received_at",
                "schedule_id",
                "scheduled_start",
                "seq",
                "sha256",
            ]
        ),
        "nodes": frozenset(
            [
                "address",
                "clock_offset_ms",
                "clock_samples",
                "created_at",
                "event_epoch",
                "firmware",
                "free_bytes",
                "hardware",
                "heartbeat_s",
                "id",
                "language",
                "last_event_seq",
                "last_seen",
                "lat",
                "lon",
                "mqtt_password_hash",
                "name",
                "node_id",
                "offline_alert_at",
                "plan_hash",
                "plan_payload",
                "plan_published_at",
                "plan_version",
                "presence",
                "presence_since",
                "raw_online",
                "raw_since",
                "reported_plan_version",
                "rssi",
                "session",
                "state",
                "status_clock",
                "token_hash",
                "uptime_s",
                "volume",
                "ward",
                "zone_id",
            ]
        ),
        "render_cache": frozenset(["created_at", "engine", "key", "media_sha256"]),
        "schedule_zones": frozenset(["schedule_id", "zone_id"]),
        "schedules": frozenset(
            [
                "announcement_id",
                "created_at",
                "created_by_id",
                "drill",
                "expires_at",
                "gap_ms",
                "id",
                "items",
                "on_clash",
                "on_preempt",
                "priority",
                "recurrence",
                "repeat",
                "rrule",
                "start_at",
                "status",
                "title",
            ]
        ),
        "users": frozenset(
            ["active", "api_token_hash", "created_at", "display_name", "id", "password_hash", "role", "username"]
        ),
        "ward_settings": frozenset(["emergency_two_person", "id", "quiet_end", "quiet_start", "updated_at", "ward"]),
        "zones": frozenset(["code", "id", "kind", "name", "ward"]),
    },
}

_BASELINE = LEGACY_SCHEMAS["0001_baseline"]
#: bedc81b = the baseline + the release policy's columns and table (the same as revision 0002 adds).
LEGACY_SCHEMAS["0002_release_policy"] = {
    **_BASELINE,
    "alerts": _BASELINE["alerts"] | {"cancel_requested_at", "cancel_requested_by_id"},
    "announcements": _BASELINE["announcements"] | {"approved_media_sha256"},
    "stream_sources": frozenset(["active", "code", "created_at", "created_by_id", "id", "name", "url"]),
}

#: Tables a legacy database of that revision may have on top: ``create_all`` of bedc81b run over a 0b4b8a1
#: database added ``stream_sources`` (new table) but none of the new columns (0002 keeps the table).
LEGACY_OPTIONAL_TABLES: dict[str, frozenset[str]] = {
    "0001_baseline": frozenset({"stream_sources"}),
}
