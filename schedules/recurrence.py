"""Recurring broadcast times, as RFC 5545 rules. Pure functions, no I/O.

Officers think in local wall-clock time (``Asia/Ho_Chi_Minh``): "6:00 and 17:00 on weekdays until 31/03",
"every hour 07–17, Monday to Friday", "on the 31st of every month". A :class:`Recurrence` holds exactly
that, and :func:`occurrences` turns it into aware UTC instants.

Rules of computation (each one is a bug some peer system shipped):

* The calendar is evaluated in the rule's zone, never in UTC: 06:00 on a Monday in Vietnam is 23:00 UTC on
  the *Sunday*. Dates (``start_date``, ``until``, ``exdates``) are local dates; conversion to UTC is the
  very last step.
* The date arithmetic is dateutil's ``rrule`` (RFC 5545), not hand-written: ``month_days=(31,)`` skips
  months without a 31st, ``-1`` is the last day of the month, Feb 29 exists only in leap years.
* ``until`` is inclusive (the whole local day); ``exdates`` remove whole local days (a holiday);
  ``expires_at`` is an instant: nothing at or after it.
* In a zone with daylight saving time a wall time that does not exist is read with the offset before
  the gap (RFC 5545 §3.3.5) and an ambiguous one as its first occurrence (``fold=0``). Vietnam has none.

Kinds (``interval`` means "every n-th" of the unit in brackets):

==========  ===========================================================================================
once        each of ``times`` on ``start_date`` (``until`` and ``interval`` are ignored)
daily       each of ``times`` every day [days]
weekdays    each of ``times`` Monday–Friday [weeks]
weekly      each of ``times`` on ``weekdays`` (default: the weekday of ``start_date``) [weeks]
monthly     each of ``times`` on ``month_days`` (default: the day of ``start_date``) [months]
hourly      at the minute:second of ``times[0]``, every ``interval`` hours from ``hour_range[0]`` to
            ``hour_range[1]`` inclusive [hours], on ``weekdays`` (default: every day)
==========  ===========================================================================================

Week-based intervals count weeks from the week (Monday–Sunday) of ``start_date``; month intervals count
months from the month of ``start_date``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby, product
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, MO, MONTHLY, WEEKLY, rrule, rruleset, rrulestr

from schedules.timeutil import DEFAULT_TZ

Kind = Literal["once", "daily", "weekdays", "weekly", "monthly", "hourly"]
KINDS: tuple[str, ...] = get_args(Kind)
MON_FRI = (0, 1, 2, 3, 4)
ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)
#: How far ahead :func:`validate` looks for a first occurrence of an open-ended rule.
NO_OCCURRENCE_HORIZON_YEARS = 10
_RFC_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_X_KIND = "X-LOAPHUONG-KIND"
_X_START = "X-LOAPHUONG-START"
_X_EXPIRES = "X-LOAPHUONG-EXPIRES"
_FREQ_NAMES = {DAILY: "DAILY", WEEKLY: "WEEKLY", MONTHLY: "MONTHLY"}


@dataclass(frozen=True)
class Recurrence:
    """When a schedule plays, in local wall-clock terms. See the module docstring for the kinds."""

    kind: Kind
    start_date: date
    times: tuple[time, ...] = ()
    until: date | None = None
    weekdays: tuple[int, ...] = ()
    month_days: tuple[int, ...] = ()
    interval: int = 1
    hour_range: tuple[int, int] | None = None
    exdates: tuple[date, ...] = ()
    expires_at: datetime | None = None
    tz: str = DEFAULT_TZ


# ------------------------------------------------------------------------------------ validation


def validate(rec: Recurrence) -> list[str]:
    """Error codes, empty when the rule is usable.

    ``bad_kind``, ``no_times``, ``bad_time`` (aware or sub-second), ``until_before_start``,
    ``interval_invalid`` (not 1…1000; these two are not checked for "once", which ignores them),
    ``bad_weekday`` (not 0…6), ``bad_month_day`` (not ±1…31),
    ``hour_range_invalid`` (hourly needs ``0 <= first <= last <= 23``), ``bad_tz``, ``expires_naive``;
    and, only when there is no other error, ``no_occurrence``: the rule yields nothing in
    ``[start_date, until]`` (the next 10 years when open-ended) once exdates and expiry are applied.
    """
    errors = list(_structural_errors(rec))
    if not errors and _first_occurrence(rec) is None:
        errors.append("no_occurrence")
    return errors


def _structural_errors(rec: Recurrence) -> Iterator[str]:
    if rec.kind not in KINDS:
        yield "bad_kind"
    if not rec.times:
        yield "no_times"
    elif any(not isinstance(t, time) or t.tzinfo is not None or t.microsecond for t in rec.times):
        yield "bad_time"
    if rec.kind != "once" and rec.until is not None and rec.until < rec.start_date:
        yield "until_before_start"
    bad_interval = not isinstance(rec.interval, int) or isinstance(rec.interval, bool) or not 1 <= rec.interval <= 1000
    if rec.kind != "once" and bad_interval:
        yield "interval_invalid"
    if any(not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 6 for w in rec.weekdays):
        yield "bad_weekday"
    if rec.kind == "monthly" and any(
        not isinstance(d, int) or isinstance(d, bool) or d == 0 or not -31 <= d <= 31 for d in rec.month_days
    ):
        yield "bad_month_day"
    if rec.kind == "hourly":
        hr = rec.hour_range
        if hr is None or len(hr) != 2 or not all(isinstance(h, int) for h in hr) or not 0 <= hr[0] <= hr[1] <= 23:
            yield "hour_range_invalid"
    try:
        ZoneInfo(rec.tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        yield "bad_tz"
    if rec.expires_at is not None and rec.expires_at.tzinfo is None:
        yield "expires_naive"


def _require_valid(rec: Recurrence) -> None:
    errors = list(_structural_errors(rec))
    if errors:
        raise ValueError(f"invalid recurrence: {', '.join(errors)}")


# ----------------------------------------------------------------------------------- the rule


def day_times(rec: Recurrence) -> list[time]:
    """The local wall-clock times at which the rule plays on a day it plays, sorted."""
    if rec.kind == "hourly":
        if not rec.times or rec.hour_range is None:
            return []
        first = rec.times[0]
        lo, hi = rec.hour_range
        return [time(h, first.minute, first.second) for h in range(lo, hi + 1, rec.interval)]
    return sorted(set(rec.times))


def _effective_weekdays(rec: Recurrence) -> tuple[int, ...]:
    if rec.kind == "weekdays":
        return MON_FRI
    if rec.kind == "weekly":
        return tuple(sorted(set(rec.weekdays))) or (rec.start_date.weekday(),)
    if rec.kind == "hourly":
        return tuple(sorted(set(rec.weekdays)))  # () = every day
    return ()


def _effective_month_days(rec: Recurrence) -> tuple[int, ...]:
    return tuple(sorted(set(rec.month_days))) or (rec.start_date.day,)


def _time_groups(times: list[time]) -> list[tuple[int, int, tuple[int, ...]]]:
    """Times grouped by (minute, second) → hours, so each group is one BYHOUR/BYMINUTE/BYSECOND rule."""
    keyed = sorted(times, key=lambda t: (t.minute, t.second, t.hour))
    return [
        (minute, second, tuple(t.hour for t in group))
        for (minute, second), group in groupby(keyed, key=lambda t: (t.minute, t.second))
    ]


def _rule_params(rec: Recurrence) -> tuple[int, dict]:
    """dateutil frequency and keyword arguments common to every time group."""
    if rec.kind == "daily":
        return DAILY, {"interval": rec.interval}
    if rec.kind in ("weekdays", "weekly"):
        return WEEKLY, {"interval": rec.interval, "byweekday": _effective_weekdays(rec), "wkst": MO}
    if rec.kind == "monthly":
        return MONTHLY, {"interval": rec.interval, "bymonthday": _effective_month_days(rec)}
    if rec.kind == "hourly":
        days = _effective_weekdays(rec)
        if days and days != ALL_DAYS:
            return WEEKLY, {"byweekday": days, "wkst": MO}
        return DAILY, {}
    raise ValueError(f"no rule for kind {rec.kind!r}")


def _local_set(rec: Recurrence, until: datetime | None) -> rruleset:
    """The rule as a dateutil ``rruleset`` of naive local datetimes (exdates and expiry not applied)."""
    dtstart = datetime.combine(rec.start_date, time(0, 0))
    times = day_times(rec)
    rs = rruleset(cache=False)
    if rec.kind == "once":
        for t in times:
            rs.rdate(datetime.combine(rec.start_date, t))
        return rs
    freq, params = _rule_params(rec)
    for minute, second, hours in _time_groups(times):
        rs.rrule(
            rrule(freq, dtstart=dtstart, until=until, byhour=hours, byminute=minute, bysecond=second, cache=False,
                  **params)
        )
    return rs


def _local_until(rec: Recurrence) -> datetime | None:
    if rec.kind == "once":
        return datetime.combine(rec.start_date, time.max)
    return datetime.combine(rec.until, time.max) if rec.until is not None else None


def _iter_local(rec: Recurrence, until: datetime | None) -> Iterator[datetime]:
    """Naive local occurrences in order, exdates removed, up to ``until`` (inclusive)."""
    limit = _local_until(rec)
    if until is not None:
        limit = until if limit is None else min(limit, until)
    excluded = set(rec.exdates)
    for moment in _local_set(rec, limit):
        if moment.date() not in excluded:
            yield moment


def _to_utc(naive_local: datetime, zone: ZoneInfo) -> datetime:
    return naive_local.replace(tzinfo=zone).astimezone(UTC)


def occurrences(rec: Recurrence, start_utc: datetime, end_utc: datetime) -> list[datetime]:
    """Aware UTC instants of the rule in ``[start_utc, end_utc)``, sorted and unique."""
    if start_utc.tzinfo is None or end_utc.tzinfo is None:
        raise ValueError("occurrences() needs timezone-aware bounds")
    _require_valid(rec)
    if end_utc <= start_utc:
        return []
    zone = ZoneInfo(rec.tz)
    if rec.expires_at is not None:
        end_utc = min(end_utc, rec.expires_at)
        if end_utc <= start_utc:
            return []
    # one day of margin either side covers any UTC offset and DST shift
    lo = start_utc.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    hi = end_utc.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    limit = _local_until(rec)
    hi = hi if limit is None else min(hi, limit)
    if hi < lo:
        return []
    excluded = set(rec.exdates)
    found = set()
    for moment in _local_set(rec, hi).between(lo, hi, inc=True):
        if moment.date() in excluded:
            continue
        instant = _to_utc(moment, zone)
        if start_utc <= instant < end_utc:
            found.add(instant)
    return sorted(found)


def _first_occurrence(rec: Recurrence) -> datetime | None:
    """First aware UTC occurrence at or after ``start_date`` (bounded search), or ``None``."""
    horizon = datetime.combine(rec.start_date + timedelta(days=366 * NO_OCCURRENCE_HORIZON_YEARS), time.max)
    zone = ZoneInfo(rec.tz)
    for moment in _iter_local(rec, horizon):
        instant = _to_utc(moment, zone)
        if rec.expires_at is not None and instant >= rec.expires_at:
            return None
        return instant
    return None


def first_occurrence(rec: Recurrence) -> datetime | None:
    """The first play of a valid rule (aware UTC), or ``None`` when it never plays."""
    _require_valid(rec)
    return _first_occurrence(rec)


# ------------------------------------------------------------------------------------ RFC 5545


def _fmt_local(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _fmt_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def to_rfc5545(rec: Recurrence) -> str:
    """The rule as iCalendar lines (``DTSTART;TZID=…``, ``RRULE``/``RDATE``, ``EXDATE``), newline-separated.

    ``DTSTART`` is the first instance of the rule (RFC 5545 wants it synchronised with the rule); one
    ``RRULE`` per distinct minute:second of the times. ``EXDATE`` lists every instance of each excluded
    day. Three ``X-LOAPHUONG-*`` properties (ignored by other iCalendar readers) keep what RFC 5545
    cannot say: the kind as the officer chose it, ``start_date`` when it precedes the first instance,
    and ``expires_at``.
    """
    _require_valid(rec)
    tzid = rec.tz
    times = day_times(rec)
    first_local = None
    for moment in _local_set(rec, _local_until(rec)):
        first_local = moment
        break
    if first_local is None:
        first_local = datetime.combine(rec.start_date, times[0])
    lines = [f"DTSTART;TZID={tzid}:{_fmt_local(first_local)}"]
    if rec.kind == "once" and len(times) == 1:
        pass  # DTSTART alone is one instance
    else:
        if rec.kind == "once":  # several times on one day: a daily rule ending that day (dateutil has no RDATE;TZID)
            freq, params, until = DAILY, {}, rec.start_date
        else:
            (freq, params), until = _rule_params(rec), rec.until
        head = [f"FREQ={_FREQ_NAMES[freq]}"]
        if params.get("interval", 1) != 1:
            head.append(f"INTERVAL={params['interval']}")
        if freq == WEEKLY:
            head.append("WKST=MO")
            head.append("BYDAY=" + ",".join(_RFC_DAYS[d] for d in params["byweekday"]))
        if freq == MONTHLY:
            head.append("BYMONTHDAY=" + ",".join(str(d) for d in params["bymonthday"]))
        tail = []
        if until is not None:
            end_local = datetime.combine(until, time(23, 59, 59)).replace(tzinfo=ZoneInfo(tzid))
            tail.append(f"UNTIL={_fmt_utc(end_local)}")
        for minute, second, hours in _time_groups(times):
            parts = [*head, "BYHOUR=" + ",".join(str(h) for h in hours), f"BYMINUTE={minute}", f"BYSECOND={second}"]
            lines.append("RRULE:" + ";".join(parts + tail))
    for day in sorted(set(rec.exdates)):
        lines.append(f"EXDATE;TZID={tzid}:" + ",".join(_fmt_local(datetime.combine(day, t)) for t in times))
    lines.append(f"{_X_KIND}:{rec.kind}")
    if rec.start_date != first_local.date():
        lines.append(f"{_X_START};VALUE=DATE:{rec.start_date.strftime('%Y%m%d')}")
    if rec.expires_at is not None:
        lines.append(f"{_X_EXPIRES}:{_fmt_utc(rec.expires_at)}")
    return "\n".join(lines)


_PROP_RE = re.compile(r"^(?P<name>[A-Za-z0-9-]+)(?P<params>(?:;[^:]*)?):(?P<value>.*)$")


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw.strip())
    return lines


def _parse_params(params: str) -> dict[str, str]:
    out = {}
    for part in params.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.upper()] = value.strip('"')
    return out


def _parse_moment(value: str, params: dict[str, str], zone: ZoneInfo) -> datetime | date:
    """A DATE (``date``) or a DATE-TIME as a naive local datetime in ``zone``."""
    value = value.strip()
    if params.get("VALUE", "").upper() == "DATE" or re.fullmatch(r"\d{8}", value):
        return datetime.strptime(value, "%Y%m%d").date()
    if value.endswith("Z"):
        moment = datetime.strptime(value[:-1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        return moment.astimezone(zone).replace(tzinfo=None)
    moment = datetime.strptime(value, "%Y%m%dT%H%M%S")
    if "TZID" in params:
        moment = moment.replace(tzinfo=ZoneInfo(params["TZID"])).astimezone(zone).replace(tzinfo=None)
    return moment


def _rrule_parts(value: str) -> dict[str, str]:
    parts = {}
    for item in value.split(";"):
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"malformed RRULE part {item!r}")
        key, val = item.split("=", 1)
        parts[key.upper()] = val.upper()
    return parts


def _ints(text: str | None) -> list[int]:
    return [int(x) for x in text.split(",")] if text else []


def from_rfc5545(text: str, tz: str | None = None) -> Recurrence:
    """Parse what :func:`to_rfc5545` writes, and the equivalent plain iCalendar written elsewhere.

    Supported: one ``DTSTART`` (``TZID``, UTC or floating = ``tz``), ``RRULE`` lines with FREQ
    DAILY/WEEKLY/MONTHLY/HOURLY, INTERVAL, UNTIL, BYDAY (no ordinals), BYMONTHDAY, BYHOUR, BYMINUTE,
    BYSECOND (several RRULEs only when they differ in the time parts), ``RDATE`` on the DTSTART day (kind
    "once"), ``EXDATE`` (each excludes its whole local day). ``COUNT`` and anything else raise
    ``ValueError``. A partial last day in a foreign ``UNTIL`` is left out (never play what was excluded).
    """
    props: list[tuple[str, dict[str, str], str]] = []
    for line in _unfold(text):
        m = _PROP_RE.match(line)
        if not m:
            raise ValueError(f"not an iCalendar property line: {line!r}")
        props.append((m["name"].upper(), _parse_params(m["params"][1:] if m["params"] else ""), m["value"]))
    dtstarts = [(p, v) for n, p, v in props if n == "DTSTART"]
    if len(dtstarts) != 1:
        raise ValueError("exactly one DTSTART is required")
    dt_params, dt_value = dtstarts[0]
    zone_name = dt_params.get("TZID") or tz or DEFAULT_TZ
    zone = ZoneInfo(zone_name)
    dtstart = _parse_moment(dt_value, dt_params, zone)
    if not isinstance(dtstart, datetime):
        dtstart = datetime.combine(dtstart, time(0, 0))
    x = {n: v for n, _, v in props if n.startswith("X-LOAPHUONG-")}
    start_date = dtstart.date()
    if _X_START in x:
        start_date = datetime.strptime(x[_X_START].strip(), "%Y%m%d").date()
    expires_at = None
    if _X_EXPIRES in x:
        moment = _parse_moment(x[_X_EXPIRES], {}, ZoneInfo("UTC"))
        expires_at = moment.replace(tzinfo=UTC) if isinstance(moment, datetime) else None
    exdates = set()
    for name, params, value in props:
        if name == "EXDATE":
            for item in value.split(","):
                moment = _parse_moment(item, params, zone)
                exdates.add(moment.date() if isinstance(moment, datetime) else moment)
    rrules = [v for n, _, v in props if n == "RRULE"]
    if any(n in ("EXRULE",) for n, _, _ in props):
        raise ValueError("EXRULE is not supported")
    common = {"start_date": start_date, "exdates": tuple(sorted(exdates)), "expires_at": expires_at, "tz": zone_name}

    if not rrules:
        moments = [dtstart]
        for name, params, value in props:
            if name == "RDATE":
                for item in value.split(","):
                    moment = _parse_moment(item, params, zone)
                    if not isinstance(moment, datetime):
                        raise ValueError("RDATE must be a DATE-TIME")
                    moments.append(moment)
        if len({m.date() for m in moments}) != 1:
            raise ValueError("RDATEs on several days are not supported")
        return Recurrence(kind="once", times=tuple(sorted({m.time() for m in moments})), **common)

    for rule in rrules:  # let dateutil judge the syntax before we map it (UNTIL is read below, leniently)
        rrulestr("RRULE:" + re.sub(r"(?i)(^|;)UNTIL=[^;]*", "", rule), dtstart=dtstart, unfold=True)
    parsed = [_rrule_parts(r) for r in rrules]
    time_keys = ("BYHOUR", "BYMINUTE", "BYSECOND")
    shape = {k: v for k, v in parsed[0].items() if k not in time_keys}
    if any({k: v for k, v in p.items() if k not in time_keys} != shape for p in parsed[1:]):
        raise ValueError("several RRULEs are supported only when they differ in BYHOUR/BYMINUTE/BYSECOND")
    unsupported = set(shape) - {"FREQ", "INTERVAL", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"}
    if unsupported:
        raise ValueError(f"unsupported RRULE parts: {', '.join(sorted(unsupported))}")
    freq = shape["FREQ"]
    interval = int(shape.get("INTERVAL", "1"))
    days = []
    for token in shape.get("BYDAY", "").split(",") if shape.get("BYDAY") else []:
        if token not in _RFC_DAYS:
            raise ValueError(f"unsupported BYDAY value {token!r}")
        days.append(_RFC_DAYS.index(token))
    days = sorted(set(days))
    if shape.get("WKST", "MO") != "MO" and freq == "WEEKLY" and interval > 1:
        raise ValueError("only WKST=MO is supported with a weekly INTERVAL")
    times: set[time] = set()
    for p in parsed:
        hours = _ints(p.get("BYHOUR")) or [dtstart.hour]
        minutes = _ints(p.get("BYMINUTE")) or [dtstart.minute]
        seconds = _ints(p.get("BYSECOND")) or [dtstart.second]
        times.update(time(h, mi, s) for h, mi, s in product(hours, minutes, seconds))
    day_list = sorted(times)
    until = None
    if "UNTIL" in shape:
        until_value = _parse_moment(shape["UNTIL"], {}, zone)
        if isinstance(until_value, datetime):
            until = until_value.date()
            if until_value.time() < day_list[-1]:
                until -= timedelta(days=1)
        else:
            until = until_value
    common["until"] = until
    kind = x.get(_X_KIND, "").strip().lower() or None
    if kind == "once":
        return Recurrence(kind="once", times=tuple(day_list), **{**common, "until": None})

    if freq == "HOURLY" or kind == "hourly":
        hours = sorted({t.hour for t in day_list})
        step = hours[1] - hours[0] if len(hours) > 1 else 1
        if freq == "HOURLY" and (interval != 1 or not all("BYHOUR" in p for p in parsed)):
            raise ValueError("FREQ=HOURLY is supported with INTERVAL=1 and BYHOUR only")
        if len({(t.minute, t.second) for t in day_list}) != 1 or hours != list(range(hours[0], hours[-1] + 1, step)):
            raise ValueError("hourly times must be one minute past evenly spaced hours")
        first = day_list[0]
        return Recurrence(kind="hourly", times=(time(hours[0], first.minute, first.second),), interval=step,
                          hour_range=(hours[0], hours[-1]), weekdays=tuple(days), **common)
    if freq == "DAILY":
        if days:
            if interval != 1:
                raise ValueError("FREQ=DAILY with BYDAY and INTERVAL is not supported")
            freq = "WEEKLY"
        else:
            return Recurrence(kind="daily", times=tuple(day_list), interval=interval, **common)
    if freq == "WEEKLY":
        if not days:
            days = [dtstart.weekday()]
        if kind == "weekdays" or (kind is None and days == list(MON_FRI)):
            if days != list(MON_FRI):
                raise ValueError("kind 'weekdays' needs BYDAY=MO,TU,WE,TH,FR")
            return Recurrence(kind="weekdays", times=tuple(day_list), interval=interval, **common)
        return Recurrence(kind="weekly", times=tuple(day_list), interval=interval, weekdays=tuple(days), **common)
    if freq == "MONTHLY":
        if days:
            raise ValueError("monthly BYDAY is not supported")
        month_days = _ints(shape.get("BYMONTHDAY")) or [dtstart.day]
        return Recurrence(kind="monthly", times=tuple(day_list), interval=interval,
                          month_days=tuple(sorted(set(month_days))), **common)
    raise ValueError(f"unsupported FREQ {freq!r}")


# ------------------------------------------------------------------------------------ describe

_VI_DAYS = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _fmt_time(t: time) -> str:
    return f"{t.hour}:{t.minute:02d}" + (f":{t.second:02d}" if t.second else "")


def _fmt_date(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def _join(items: list[str], lang: str) -> str:
    word = " và " if lang == "vi" else " and "
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + word + items[-1]


def _days_phrase(days: tuple[int, ...], lang: str) -> str:
    if days == MON_FRI:
        return "các ngày trong tuần" if lang == "vi" else "on weekdays"
    if not days or days == ALL_DAYS:
        return "hằng ngày" if lang == "vi" else "every day"
    names = _VI_DAYS if lang == "vi" else _EN_DAYS
    joined = _join([names[d] for d in days], lang)
    return joined if lang == "vi" else f"on {joined}"


def _month_days_phrase(days: tuple[int, ...], lang: str) -> str:
    positive = [str(d) for d in days if d > 0]
    negative = sorted((d for d in days if d < 0), reverse=True)
    parts = []
    if lang == "vi":
        if positive:
            parts.append("ngày " + _join(positive, lang))
        parts += ["ngày cuối tháng" if d == -1 else f"ngày thứ {-d} tính từ cuối tháng" for d in negative]
    else:
        if positive:
            parts.append(("day " if len(positive) == 1 else "days ") + _join(positive, lang))
        parts += ["the last day" if d == -1 else f"the {-d}th day from the end" for d in negative]
    return _join(parts, lang)


def describe(rec: Recurrence, lang: str = "vi") -> str:
    """Human text, e.g. "6:00 và 17:00 các ngày trong tuần, từ 02/03/2026 đến 31/03/2026, trừ 30/04/2026".

    ``lang`` is ``"vi"`` (default) or ``"en"``. Dates are dd/mm/yyyy in both; times are local.
    """
    if lang not in ("vi", "en"):
        raise ValueError(f"unsupported language {lang!r}")
    vi = lang == "vi"
    times = _join([_fmt_time(t) for t in day_times(rec)], lang)
    n = rec.interval
    if rec.kind == "once":
        text = f"{times} ngày {_fmt_date(rec.start_date)}" if vi else f"{times} on {_fmt_date(rec.start_date)}"
    elif rec.kind == "daily":
        if n == 1:
            text = f"{times} hằng ngày" if vi else f"{times} every day"
        else:
            text = f"{times} {n} ngày một lần" if vi else f"{times} every {n} days"
    elif rec.kind in ("weekdays", "weekly"):
        days = _effective_weekdays(rec)
        phrase = _days_phrase(days, lang)
        if n == 1:
            if days == MON_FRI:
                text = f"{times} {phrase}"
            else:
                text = f"{times} {phrase} hằng tuần" if vi else f"{times} every {phrase.removeprefix('on ')}"
        else:
            text = f"{times} {phrase}, {n} tuần một lần" if vi else f"{times} {phrase}, every {n} weeks"
    elif rec.kind == "monthly":
        days = _effective_month_days(rec)
        phrase = _month_days_phrase(days, lang)
        if vi:
            text = f"{times} {phrase} " + ("hằng tháng" if n == 1 else f"{n} tháng một lần")
        else:
            text = f"{times} on {phrase} " + ("of every month" if n == 1 else f"every {n} months")
        if any(d > 28 or d < -28 for d in days):
            text += " (tháng không có ngày đó thì bỏ qua)" if vi else " (skipped in months without that day)"
    else:  # hourly
        slots = day_times(rec)
        first, last = (_fmt_time(slots[0]), _fmt_time(slots[-1])) if slots else ("?", "?")
        if vi:
            every = "mỗi giờ" if n == 1 else f"mỗi {n} giờ"
            text = f"{every} từ {first} đến {last} {_days_phrase(_effective_weekdays(rec), lang)}"
        else:
            every = "every hour" if n == 1 else f"every {n} hours"
            text = f"{every} from {first} to {last} {_days_phrase(_effective_weekdays(rec), lang)}"
    if rec.kind != "once":
        if vi:
            text += f", từ {_fmt_date(rec.start_date)}"
            text += f" đến {_fmt_date(rec.until)}" if rec.until else ""
        else:
            text += f", from {_fmt_date(rec.start_date)}"
            text += f" to {_fmt_date(rec.until)}" if rec.until else ""
    if rec.exdates:
        days_text = _join([_fmt_date(d) for d in sorted(set(rec.exdates))], lang)
        text += f", trừ {days_text}" if vi else f", except {days_text}"
    if rec.expires_at is not None:
        local = rec.expires_at.astimezone(ZoneInfo(rec.tz))
        stamp = f"{_fmt_time(local.time().replace(microsecond=0))} {_fmt_date(local.date())}"
        text += f", hết hạn lúc {stamp}" if vi else f", expires at {stamp}"
    return text


def with_exdates(rec: Recurrence, *days: date) -> Recurrence:
    """A copy of ``rec`` that also skips ``days`` (e.g. public holidays)."""
    return replace(rec, exdates=tuple(sorted(set(rec.exdates) | set(days))))
