"""Recurrence (pure): every kind, the UTC day boundary, RFC 5545 round trips, human text, validation."""

from __future__ import annotations

import calendar
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schedules.recurrence import (
    MON_FRI,
    Recurrence,
    day_times,
    describe,
    first_occurrence,
    from_rfc5545,
    occurrences,
    to_rfc5545,
    validate,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
YEAR_START = datetime(2025, 12, 31, tzinfo=UTC)
FAR = datetime(2031, 1, 1, tzinfo=UTC)


def local(moments: list[datetime]) -> list[datetime]:
    return [m.astimezone(VN).replace(tzinfo=None) for m in moments]


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A local Vietnam wall time as naive datetime (what the tables below speak)."""
    return datetime(y, mo, d, h, mi, s)


def all_of(rec: Recurrence) -> list[datetime]:
    return occurrences(rec, YEAR_START - timedelta(days=400), FAR)


# ------------------------------------------------------------------------------------------ tables

WEEKDAYS_6_17 = Recurrence("weekdays", date(2026, 3, 2), (time(6), time(17)), until=date(2026, 3, 6))

TABLE = [
    pytest.param(  # the user's words: "6:00 và 17:00 mỗi ngày trong tuần đến thứ Sáu"
        WEEKDAYS_6_17,
        [at(2026, 3, d, h) for d in range(2, 7) for h in (6, 17)],
        id="weekdays-6-and-17-until-friday",
    ),
    pytest.param(
        Recurrence("weekdays", date(2026, 3, 5), (time(6),), until=date(2026, 3, 10)),  # Thu → next Tue
        [at(2026, 3, 5, 6), at(2026, 3, 6, 6), at(2026, 3, 9, 6), at(2026, 3, 10, 6)],
        id="weekdays-skip-weekend",
    ),
    pytest.param(  # "every hour 07–17, Monday to Friday"
        Recurrence("hourly", date(2026, 3, 6), (time(7),), until=date(2026, 3, 9), weekdays=MON_FRI,
                   hour_range=(7, 17)),
        [at(2026, 3, 6, h) for h in range(7, 18)] + [at(2026, 3, 9, h) for h in range(7, 18)],
        id="hourly-7-17-mon-fri",
    ),
    pytest.param(
        Recurrence("hourly", date(2026, 3, 7), (time(7, 30),), until=date(2026, 3, 7), hour_range=(7, 17), interval=3),
        [at(2026, 3, 7, h, 30) for h in (7, 10, 13, 16)],
        id="hourly-every-3h-any-day",
    ),
    pytest.param(
        Recurrence("daily", date(2026, 3, 1), (time(5, 30), time(17, 0, 15)), until=date(2026, 3, 3)),
        [at(2026, 3, d, 5, 30) for d in (1, 2, 3)] + [at(2026, 3, d, 17, 0, 15) for d in (1, 2, 3)],
        id="daily-with-seconds",
    ),
    pytest.param(
        Recurrence("daily", date(2026, 3, 1), (time(6),), until=date(2026, 3, 10), interval=3),
        [at(2026, 3, d, 6) for d in (1, 4, 7, 10)],
        id="daily-every-3-days",
    ),
    pytest.param(
        Recurrence("weekly", date(2026, 3, 2), (time(6),), until=date(2026, 3, 31), weekdays=(0, 3), interval=2),
        [at(2026, 3, 2, 6), at(2026, 3, 5, 6), at(2026, 3, 16, 6), at(2026, 3, 19, 6), at(2026, 3, 30, 6)],
        id="weekly-mon-thu-every-2-weeks",
    ),
    pytest.param(
        Recurrence("weekly", date(2026, 3, 4), (time(18),), until=date(2026, 3, 25)),  # default: its weekday
        [at(2026, 3, d, 18) for d in (4, 11, 18, 25)],
        id="weekly-default-weekday",
    ),
    pytest.param(
        Recurrence("monthly", date(2026, 1, 1), (time(6),), until=date(2026, 12, 31), month_days=(31,)),
        [at(2026, m, 31, 6) for m in (1, 3, 5, 7, 8, 10, 12)],
        id="monthly-31st-skips-short-months",
    ),
    pytest.param(
        Recurrence("monthly", date(2026, 1, 1), (time(6),), until=date(2026, 6, 30), month_days=(-1,)),
        [at(2026, 1, 31, 6), at(2026, 2, 28, 6), at(2026, 3, 31, 6), at(2026, 4, 30, 6), at(2026, 5, 31, 6),
         at(2026, 6, 30, 6)],
        id="monthly-last-day",
    ),
    pytest.param(  # leap day: only 2028 has a Feb 29
        Recurrence("monthly", date(2028, 1, 1), (time(6),), until=date(2028, 3, 31), month_days=(29,)),
        [at(2028, 1, 29, 6), at(2028, 2, 29, 6), at(2028, 3, 29, 6)],
        id="monthly-29-leap-2028",
    ),
    pytest.param(
        Recurrence("monthly", date(2027, 1, 1), (time(6),), until=date(2027, 3, 31), month_days=(29,)),
        [at(2027, 1, 29, 6), at(2027, 3, 29, 6)],
        id="monthly-29-no-leap-2027",
    ),
    pytest.param(
        Recurrence("monthly", date(2026, 1, 15), (time(6),), until=date(2026, 7, 31), interval=3),
        [at(2026, 1, 15, 6), at(2026, 4, 15, 6), at(2026, 7, 15, 6)],
        id="monthly-default-day-every-3-months",
    ),
    pytest.param(  # holidays 30/4 and 1/5 excluded
        Recurrence("daily", date(2026, 4, 28), (time(6), time(17)), until=date(2026, 5, 3),
                   exdates=(date(2026, 4, 30), date(2026, 5, 1))),
        [at(2026, 4, d, h) for d in (28, 29) for h in (6, 17)] + [at(2026, 5, d, h) for d in (2, 3) for h in (6, 17)],
        id="exdates-30-4-and-1-5",
    ),
    pytest.param(  # expiry at 06:00 local on the 5th: 06:00 that day is already too late
        Recurrence("daily", date(2026, 3, 1), (time(6), time(17)), expires_at=datetime(2026, 3, 5, 6, 0, tzinfo=VN)),
        [at(2026, 3, d, h) for d in (1, 2, 3, 4) for h in (6, 17)],
        id="expiry-cuts-the-series",
    ),
    pytest.param(
        Recurrence("once", date(2026, 3, 8), (time(17), time(5, 30)), until=date(2026, 3, 1)),
        [at(2026, 3, 8, 5, 30), at(2026, 3, 8, 17)],
        id="once-two-times",
    ),
]


@pytest.mark.parametrize(("rec", "expected"), TABLE)
def test_kinds_table(rec: Recurrence, expected: list[datetime]):
    got = all_of(rec)
    assert local(got) == sorted(expected)
    assert all(m.tzinfo is UTC for m in got)


def test_utc_day_boundary_morning_lands_on_the_local_day():
    """06:00 Monday in Vietnam is 23:00 UTC on Sunday; 07:00 is exactly 00:00 UTC."""
    got = occurrences(WEEKDAYS_6_17, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    assert got[0] == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # Sunday in UTC …
    assert got[0].weekday() == 6 and got[0].astimezone(VN).weekday() == 0  # … Monday where it is heard
    hourly = Recurrence("hourly", date(2026, 3, 2), (time(7),), until=date(2026, 3, 2), hour_range=(7, 8))
    assert occurrences(hourly, YEAR_START, FAR) == [datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
                                                    datetime(2026, 3, 2, 1, 0, tzinfo=UTC)]


def test_window_is_half_open_and_sorted_unique():
    rec = Recurrence("daily", date(2026, 3, 1), (time(6), time(6), time(17)))
    six = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 06:00 on the 2nd
    got = occurrences(rec, six, six + timedelta(days=1))
    assert got == [six, six + timedelta(hours=11)]  # 17:00 on the 2nd; 06:00 on the 3rd is the end bound
    assert occurrences(rec, six, six) == []
    assert occurrences(rec, six + timedelta(days=1), six) == []
    with pytest.raises(ValueError):
        occurrences(rec, datetime(2026, 3, 1), datetime(2026, 3, 2))


def test_hourly_year_is_fast():
    rec = Recurrence("hourly", date(2026, 1, 1), (time(7),), weekdays=MON_FRI, hour_range=(7, 17))
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    occurrences(rec, start, end)  # warm up imports and zone cache
    best = float("inf")
    for _ in range(3):
        t0 = clock.perf_counter()
        got = occurrences(rec, start, end)
        best = min(best, clock.perf_counter() - t0)
    assert len(got) == 261 * 11
    assert best < 0.05, f"{best * 1000:.1f} ms"


# -------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("rec", "codes"),
    [
        (WEEKDAYS_6_17, []),
        (Recurrence("daily", date(2026, 3, 1), ()), ["no_times"]),
        (Recurrence("daily", date(2026, 3, 1), (time(6),), until=date(2026, 2, 28)), ["until_before_start"]),
        (Recurrence("weekly", date(2026, 3, 1), (time(6),), weekdays=(7,)), ["bad_weekday"]),
        (Recurrence("weekly", date(2026, 3, 1), (time(6),), weekdays=(-1, 2)), ["bad_weekday"]),
        (Recurrence("hourly", date(2026, 3, 1), (time(6),)), ["hour_range_invalid"]),
        (Recurrence("hourly", date(2026, 3, 1), (time(6),), hour_range=(17, 7)), ["hour_range_invalid"]),
        (Recurrence("hourly", date(2026, 3, 1), (time(6),), hour_range=(7, 24)), ["hour_range_invalid"]),
        (Recurrence("daily", date(2026, 3, 1), (time(6),), interval=0), ["interval_invalid"]),
        (Recurrence("monthly", date(2026, 3, 1), (time(6),), month_days=(0, 32)), ["bad_month_day"]),
        (Recurrence("daily", date(2026, 3, 1), (time(6, tzinfo=UTC),)), ["bad_time"]),
        (Recurrence("daily", date(2026, 3, 1), (time(6),), tz="Mars/Olympus"), ["bad_tz"]),
        (Recurrence("daily", date(2026, 3, 1), (time(6),), expires_at=datetime(2026, 4, 1)), ["expires_naive"]),
        (Recurrence("yearly", date(2026, 3, 1), (time(6),)), ["bad_kind"]),  # type: ignore[arg-type]
        # rules that are well formed but never play
        (Recurrence("monthly", date(2026, 4, 1), (time(6),), until=date(2026, 4, 30), month_days=(31,)),
         ["no_occurrence"]),
        (Recurrence("monthly", date(2026, 2, 1), (time(6),), month_days=(30,), interval=12), ["no_occurrence"]),
        (Recurrence("weekly", date(2026, 3, 2), (time(6),), until=date(2026, 3, 6), weekdays=(5, 6)),
         ["no_occurrence"]),
        (Recurrence("once", date(2026, 4, 30), (time(6),), exdates=(date(2026, 4, 30),)), ["no_occurrence"]),
        (Recurrence("daily", date(2026, 3, 1), (time(6),), expires_at=datetime(2026, 3, 1, 6, tzinfo=VN)),
         ["no_occurrence"]),
        (Recurrence("daily", date(2026, 3, 1), (), interval=0, until=date(2026, 1, 1)),
         ["no_times", "until_before_start", "interval_invalid"]),
    ],
)
def test_validate(rec: Recurrence, codes: list[str]):
    assert validate(rec) == codes


def test_invalid_rules_are_refused_not_guessed():
    with pytest.raises(ValueError, match="hour_range_invalid"):
        occurrences(Recurrence("hourly", date(2026, 3, 1), (time(6),)), YEAR_START, FAR)
    with pytest.raises(ValueError, match="no_times"):
        to_rfc5545(Recurrence("daily", date(2026, 3, 1), ()))


def test_first_occurrence():
    assert first_occurrence(WEEKDAYS_6_17) == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    never = Recurrence("monthly", date(2026, 4, 1), (time(6),), until=date(2026, 4, 30), month_days=(31,))
    assert first_occurrence(never) is None


# ------------------------------------------------------------------------------------------ describe


@pytest.mark.parametrize(
    ("rec", "vi", "en"),
    [
        (
            Recurrence("weekdays", date(2026, 3, 2), (time(17), time(6)), until=date(2026, 3, 31),
                       exdates=(date(2026, 4, 30),)),
            "6:00 và 17:00 các ngày trong tuần, từ 02/03/2026 đến 31/03/2026, trừ 30/04/2026",
            "6:00 and 17:00 on weekdays, from 02/03/2026 to 31/03/2026, except 30/04/2026",
        ),
        (
            Recurrence("hourly", date(2026, 3, 2), (time(7),), weekdays=MON_FRI, hour_range=(7, 17)),
            "mỗi giờ từ 7:00 đến 17:00 các ngày trong tuần, từ 02/03/2026",
            "every hour from 7:00 to 17:00 on weekdays, from 02/03/2026",
        ),
        (
            Recurrence("daily", date(2026, 3, 2), (time(5, 30),), exdates=(date(2026, 5, 1), date(2026, 4, 30))),
            "5:30 hằng ngày, từ 02/03/2026, trừ 30/04/2026 và 01/05/2026",
            "5:30 every day, from 02/03/2026, except 30/04/2026 and 01/05/2026",
        ),
        (
            Recurrence("weekly", date(2026, 3, 2), (time(18),), weekdays=(6, 0, 2)),
            "18:00 thứ Hai, thứ Tư và Chủ nhật hằng tuần, từ 02/03/2026",
            "18:00 every Monday, Wednesday and Sunday, from 02/03/2026",
        ),
        (
            Recurrence("monthly", date(2026, 1, 1), (time(6),), month_days=(31,), interval=2,
                       expires_at=datetime(2026, 12, 31, 23, tzinfo=UTC)),
            "6:00 ngày 31 2 tháng một lần (tháng không có ngày đó thì bỏ qua), từ 01/01/2026, "
            "hết hạn lúc 6:00 01/01/2027",
            "6:00 on day 31 every 2 months (skipped in months without that day), from 01/01/2026, "
            "expires at 6:00 01/01/2027",
        ),
        (
            Recurrence("once", date(2026, 9, 2), (time(7, 0, 30),)),
            "7:00:30 ngày 02/09/2026",
            "7:00:30 on 02/09/2026",
        ),
    ],
)
def test_describe(rec: Recurrence, vi: str, en: str):
    assert describe(rec) == vi
    assert describe(rec, lang="en") == en


# ------------------------------------------------------------------------------------------ RFC 5545


def test_rfc5545_text_for_the_user_example():
    rec = Recurrence("weekdays", date(2026, 3, 2), (time(6), time(17)), until=date(2026, 3, 31),
                     exdates=(date(2026, 4, 30),))
    assert to_rfc5545(rec).splitlines() == [
        "DTSTART;TZID=Asia/Ho_Chi_Minh:20260302T060000",
        "RRULE:FREQ=WEEKLY;WKST=MO;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6,17;BYMINUTE=0;BYSECOND=0;UNTIL=20260331T165959Z",
        "EXDATE;TZID=Asia/Ho_Chi_Minh:20260430T060000,20260430T170000",
        "X-LOAPHUONG-KIND:weekdays",
    ]
    assert from_rfc5545(to_rfc5545(rec)) == rec


@pytest.mark.parametrize("case", [p.values[0] for p in TABLE], ids=[p.id for p in TABLE])
def test_rfc5545_round_trip_of_the_table(case: Recurrence):
    text = to_rfc5545(case)
    back = from_rfc5545(text)
    assert all_of(back) == all_of(case)
    assert to_rfc5545(back) == text


def dateutil_reading(text: str, start: datetime, end: datetime) -> list[datetime]:
    """How plain dateutil reads our text as RFC 5545 says (DTSTART is an instance), X- properties aside."""
    plain = "\n".join(line for line in text.splitlines() if not line.startswith("X-"))
    rules = rrulestr(plain, forceset=True, compatible=True)
    return sorted(m.astimezone(UTC) for m in rules.between(start, end, inc=True) if m < end)


@pytest.mark.parametrize("case", [p.values[0] for p in TABLE if p.values[0].expires_at is None],
                         ids=[p.id for p in TABLE if p.values[0].expires_at is None])
def test_other_readers_see_the_same_instants(case: Recurrence):
    assert dateutil_reading(to_rfc5545(case), YEAR_START - timedelta(days=400), FAR) == all_of(case)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # Google Calendar style "every weekday", UNTIL as a date
            "DTSTART;TZID=Asia/Ho_Chi_Minh:20260302T060000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20260306",
            Recurrence("weekdays", date(2026, 3, 2), (time(6),), until=date(2026, 3, 6)),
        ),
        (  # UTC DTSTART (23:00 UTC Sunday = 06:00 Monday), hourly rule
            "DTSTART:20260301T230000Z\nRRULE:FREQ=HOURLY;BYHOUR=6,7,8;BYDAY=MO,TU",
            Recurrence("hourly", date(2026, 3, 2), (time(6),), weekdays=(0, 1), hour_range=(6, 8)),
        ),
        (  # floating DTSTART, daily with BYDAY, a whole-day EXDATE, folded line
            "DTSTART:20260302T173000\nRRULE:FREQ=DAILY;BYDAY=SA,SU;\n UNTIL=20260315T103000Z\n"
            "EXDATE;VALUE=DATE:20260308",
            Recurrence("weekly", date(2026, 3, 2), (time(17, 30),), weekdays=(5, 6), until=date(2026, 3, 15),
                       exdates=(date(2026, 3, 8),)),
        ),
        (  # a foreign UNTIL in the middle of the last day: that day's 17:00 must not play
            "DTSTART;TZID=Asia/Ho_Chi_Minh:20260302T060000\nRRULE:FREQ=DAILY;BYHOUR=6,17;UNTIL=20260304T020000Z",
            Recurrence("daily", date(2026, 3, 2), (time(6), time(17)), until=date(2026, 3, 3)),
        ),
    ],
)
def test_from_rfc5545_reads_plain_icalendar(text: str, expected: Recurrence):
    assert from_rfc5545(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "RRULE:FREQ=DAILY",  # no DTSTART
        "DTSTART:20260302T060000\nRRULE:FREQ=DAILY;COUNT=5",
        "DTSTART:20260302T060000\nRRULE:FREQ=YEARLY",
        "DTSTART:20260302T060000\nRRULE:FREQ=MONTHLY;BYDAY=1MO",
        "DTSTART:20260302T060000\nRDATE:20260303T060000",
        "DTSTART:20260302T060000\nRRULE:FREQ=DAILY;INTERVAL=2\nRRULE:FREQ=DAILY;INTERVAL=3",
        "DTSTART:20260302T060000\nRRULE:FREQ=DAILY;BYSETPOS=1",
        "not ical at all",
    ],
)
def test_from_rfc5545_refuses_what_it_cannot_represent(text: str):
    with pytest.raises(ValueError):
        from_rfc5545(text)


# ------------------------------------------------------------------------------------------ properties

times_st = st.lists(
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59]), st.sampled_from([0, 0, 0, 30])),
    min_size=1,
    max_size=3,
)


@st.composite
def recurrences(draw) -> Recurrence:
    kind = draw(st.sampled_from(["once", "daily", "weekdays", "weekly", "monthly", "hourly"]))
    start = draw(st.dates(date(2025, 1, 1), date(2029, 12, 31)))
    until = draw(st.none() | st.integers(0, 120).map(lambda n: start + timedelta(days=n)))
    span_end = until or start + timedelta(days=120)
    exdates = draw(st.lists(st.integers(0, (span_end - start).days).map(lambda n: start + timedelta(days=n)),
                            max_size=4, unique=True))
    expires_at = draw(st.none() | st.integers(0, 130 * 24).map(
        lambda h: datetime.combine(start, time(0), tzinfo=VN) + timedelta(hours=h, minutes=30)))
    weekdays = tuple(sorted(draw(st.sets(st.integers(0, 6), max_size=7))))
    month_days = tuple(sorted(draw(st.sets(st.sampled_from([1, 2, 15, 28, 29, 30, 31, -1, -2]), max_size=3))))
    lo = draw(st.integers(0, 23))
    hour_range = (lo, draw(st.integers(lo, 23)))
    return Recurrence(
        kind=kind, start_date=start, times=tuple(draw(times_st)), until=until, weekdays=weekdays,
        month_days=month_days, interval=draw(st.integers(1, 3)), hour_range=hour_range,
        exdates=tuple(sorted(exdates)), expires_at=expires_at,
    )


def window_of(rec: Recurrence) -> tuple[datetime, datetime]:
    start = datetime.combine(rec.start_date, time(0), tzinfo=VN).astimezone(UTC) - timedelta(days=2)
    return start, start + timedelta(days=135)


def expected_days(rec: Recurrence, day: date) -> bool:
    """Independent statement of which local days a rule plays on (no dateutil)."""
    if rec.kind == "once":
        return day == rec.start_date
    if rec.kind == "daily":
        return (day - rec.start_date).days % rec.interval == 0
    monday = rec.start_date - timedelta(days=rec.start_date.weekday())
    week_ok = ((day - monday).days // 7) % rec.interval == 0
    if rec.kind == "weekdays":
        return day.weekday() < 5 and week_ok
    if rec.kind == "weekly":
        return day.weekday() in (rec.weekdays or (rec.start_date.weekday(),)) and week_ok
    if rec.kind == "hourly":
        return not rec.weekdays or day.weekday() in rec.weekdays
    months = (day.year - rec.start_date.year) * 12 + day.month - rec.start_date.month
    last = calendar.monthrange(day.year, day.month)[1]
    wanted = {d if d > 0 else last + d + 1 for d in (rec.month_days or (rec.start_date.day,))}
    return months % rec.interval == 0 and day.day in wanted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recurrences())
def test_property_occurrences_honour_the_local_rule(rec: Recurrence):
    start, end = window_of(rec)
    got = occurrences(rec, start, end)
    assert all(a < b for a, b in zip(got, got[1:], strict=False)), "strictly increasing"
    wall_times = set(day_times(rec))
    for moment in got:
        assert moment.tzinfo is UTC
        here = moment.astimezone(VN)
        assert here.time().replace(tzinfo=None) in wall_times  # the requested local wall time …
        assert expected_days(rec, here.date()), f"{here:%a %d/%m/%Y} not a day of {rec}"  # … on a local day
        assert here.date() not in rec.exdates
        assert rec.start_date <= here.date()
        assert rec.until is None or rec.kind == "once" or here.date() <= rec.until
        assert rec.expires_at is None or moment < rec.expires_at
    # completeness: every local day that should play plays at every time (within the window)
    last_day = min(rec.until or date.max, (end - timedelta(days=3)).astimezone(VN).date())
    if rec.kind == "once":
        last_day = rec.start_date
    day, by_day = rec.start_date, {}
    for moment in got:
        by_day.setdefault(moment.astimezone(VN).date(), set()).add(moment.astimezone(VN).time().replace(tzinfo=None))
    while day <= last_day:
        if expected_days(rec, day) and day not in rec.exdates:
            expect = {t for t in wall_times if rec.expires_at is None
                      or datetime.combine(day, t, tzinfo=VN) < rec.expires_at}
            assert by_day.get(day, set()) == expect, day
        day += timedelta(days=1)


@settings(max_examples=60, deadline=None)
@given(recurrences())
def test_property_daily_count_is_days_times_times(rec: Recurrence):
    rec = Recurrence("daily", rec.start_date, rec.times, until=rec.until or rec.start_date + timedelta(days=30))
    start, end = window_of(rec)
    days = (rec.until - rec.start_date).days + 1
    assert len(occurrences(rec, start, end)) == days * len(set(rec.times))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recurrences())
def test_property_rfc5545_round_trip_same_occurrences(rec: Recurrence):
    assume(validate(rec) in ([], ["no_occurrence"]))
    start, end = window_of(rec)
    text = to_rfc5545(rec)
    back = from_rfc5545(text)
    assert occurrences(back, start, end) == occurrences(rec, start, end)
    assert validate(back) == validate(rec)
    if rec.expires_at is None and not validate(rec):  # other readers: same instants (DTSTART is synchronised)
        assert dateutil_reading(text, start, end) == [m for m in occurrences(rec, start, end)]
