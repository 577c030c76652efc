"""Times of day as people write them (schedules/spoken.py): every HH:MM round-trips in each spoken form, and
garbage gets a SpokenTimeError, never another exception."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedules.spoken import SpokenTimeError, format_time, parse_day, parse_time_of_day, parse_times, split_days

hours = st.integers(0, 23)
minutes = st.integers(0, 59)


@pytest.mark.parametrize(("text", "expected"), [
    ("6h30", "06:30"), ("6 giờ 30", "06:30"), ("6g30", "06:30"), ("6:30", "06:30"), ("06:30", "06:30"),
    ("18h", "18:00"), ("18 giờ", "18:00"), ("6 giờ 30 phút", "06:30"), ("6h30 sáng", "06:30"),
    ("6 giờ chiều", "18:00"), ("12 giờ trưa", "12:00"), ("1 giờ trưa", "13:00"), ("8 giờ tối", "20:00"),
    ("12 giờ đêm", "00:00"), ("6 giờ rưỡi", "06:30"), ("6 GIO 30", "06:30"), ("  7H  ", "07:00"),
    ("18.45", "18:45"), ("2 giờ 15 chiều", "14:15"),
])
def test_what_people_write(text: str, expected: str) -> None:
    assert format_time(parse_time_of_day(text)) == expected


@pytest.mark.parametrize("text", ["", "   ", "abc", "25h", "6:", "6h61", "18h sáng", "3 giờ tối", "6 30", "h30",
                                  "6h30 chiều tối", "-1h", "6:30:00"])
def test_what_is_not_a_time(text: str) -> None:
    with pytest.raises(SpokenTimeError):
        parse_time_of_day(text)


@given(hours, minutes)
def test_every_hh_mm_round_trips(h: int, m: int) -> None:
    t = time(h, m)
    for text in (f"{h:02d}:{m:02d}", f"{h}:{m:02d}", f"{h}h{m:02d}", f"{h}h{m}", f"{h} giờ {m}",
                 f"{h} giờ {m} phút", f"{h}g{m}", f"{h} gio {m} phut"):
        assert parse_time_of_day(text) == t, text
    assert parse_time_of_day(format_time(t)) == t


@given(st.integers(1, 11), minutes)
def test_parts_of_the_day(h: int, m: int) -> None:
    assert parse_time_of_day(f"{h}h{m:02d} sáng") == time(h, m)
    if h <= 6:
        assert parse_time_of_day(f"{h} giờ {m} chiều") == time(h + 12, m)
    if h >= 6:
        assert parse_time_of_day(f"{h} giờ {m} tối") == time(h + 12, m)


@given(st.text(max_size=30))
def test_garbage_is_refused_clearly(text: str) -> None:
    try:
        t = parse_time_of_day(text)
    except SpokenTimeError as exc:
        assert exc.text == text
    else:
        assert isinstance(t, time)


@given(st.lists(st.tuples(hours, minutes), min_size=1, max_size=5))
def test_several_times(pairs: list[tuple[int, int]]) -> None:
    text = ", ".join(f"{h}h{m:02d}" for h, m in pairs)
    assert parse_times(text) == sorted({time(h, m) for h, m in pairs})


@given(st.text(max_size=30))
def test_several_times_never_crash(text: str) -> None:
    try:
        times = parse_times(text)
    except SpokenTimeError as exc:
        assert isinstance(exc.text, str)
    else:
        assert times and all(isinstance(t, time) for t in times)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
def test_dates_round_trip(d: date) -> None:
    today = date(2026, 12, 7)
    assert parse_day(d.strftime("%d/%m/%Y"), today) == d
    assert parse_day(d.isoformat(), today) == d
    if (d.month, d.day) != (2, 29):
        assert parse_day(f"{d.day}/{d.month}", today) == d.replace(year=2026)


@given(st.text(max_size=20))
def test_date_garbage(text: str) -> None:
    try:
        day = parse_day(text, date(2026, 1, 1))
    except SpokenTimeError as exc:
        assert exc.text == text
    else:
        assert isinstance(day, date)


@pytest.mark.parametrize(("text", "times", "days"), [
    ("6h30 thứ Hai–thứ Sáu", "6h30", [0, 1, 2, 3, 4]),
    ("6h30 thứ hai - thứ sáu", "6h30", [0, 1, 2, 3, 4]),
    ("6 giờ 30 từ thứ 2 đến thứ 6", "6 gio 30", [0, 1, 2, 3, 4]),
    ("7h T2-T6", "7h", [0, 1, 2, 3, 4]),
    ("18h cuối tuần", "18h", [5, 6]),
    ("6h30 hằng ngày", "6h30", [0, 1, 2, 3, 4, 5, 6]),
    ("5h chủ nhật", "5h", [6]),
    ("thứ Bảy–thứ Hai 8h", "8h", [0, 5, 6]),  # a range wraps over the week's end
    ("6h30 các ngày thứ Hai, thứ Tư", "6h30", [0, 2]),
    ("6h30, 17h", "6h30, 17h", []),  # no day said: the text is left as it is
])
def test_days_said_with_the_time(text: str, times: str, days: list[int]) -> None:
    rest, said = split_days(text)
    assert (rest, said) == (times, days)
    assert parse_times(rest)  # what is left is the time(s)


weekday_words = st.sampled_from(["thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật"])


@given(hours, minutes, weekday_words, weekday_words)
def test_a_time_and_a_day_range_in_any_form(h: int, m: int, first: str, last: str) -> None:
    rest, said = split_days(f"{h}h{m:02d} {first}–{last}")
    assert parse_times(rest) == [time(h, m)]
    assert said and len(said) == len(set(said)) and all(0 <= d < 7 for d in said)


@given(st.text(max_size=40))
def test_day_phrases_never_crash(text: str) -> None:
    rest, said = split_days(text)
    assert isinstance(rest, str) and all(0 <= d < 7 for d in said)
