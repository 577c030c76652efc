"""Times of day and dates the way a ward officer writes them (no Flask here).

``6h30``, ``6 giờ 30``, ``6g30``, ``6:30``, ``06:30``, ``18h``, ``18 giờ``, ``6 giờ 30 phút``, ``6h30 sáng``,
``6 giờ chiều`` (18:00), ``12 giờ trưa``, ``6 giờ rưỡi`` (6:30), and the same without diacritics (``6 gio 30``)
all mean a time of day. A part of the day (sáng, trưa, chiều, tối, đêm) moves a 12-hour clock reading onto the
24-hour clock: ``2 giờ chiều`` is 14:00, ``8 giờ tối`` 20:00, ``12 giờ đêm`` 00:00; a reading that contradicts
its part of the day (``18h sáng``) is refused rather than guessed.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, time

__all__ = ["SpokenTimeError", "parse_time_of_day", "parse_times", "parse_day", "format_time"]


class SpokenTimeError(ValueError):
    """Not a time of day (or date); ``text`` is what was typed."""

    def __init__(self, text: str, why: str = "") -> None:
        super().__init__(f"not a time of day: {text!r}" + (f" ({why})" if why else ""))
        self.text = text


def _plain(text: str) -> str:
    """Lower case, no diacritics (đ → d), single spaces: 'Giờ  Chiều' → 'gio chieu'."""
    text = unicodedata.normalize("NFD", (text or "").strip().lower()).replace("đ", "d")
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text)


_PERIODS = ("sang", "trua", "chieu", "toi", "dem")
_TIME = re.compile(
    r"^(?P<h>\d{1,2})"
    r"(?:\s*(?P<sep>h|g|gio|:|\.)\s*(?:(?P<m>\d{1,2})\s*(?:phut|p|')?|(?P<half>ruoi))?)?"
    r"(?:\s*(?P<period>" + "|".join(_PERIODS) + r"))?$"
)


def _with_period(hour: int, period: str | None, text: str) -> int:
    if period is None:
        return hour
    if period == "sang":  # morning: 0…11 (12 giờ sáng is not said; refused)
        if hour <= 11:
            return hour
    elif period == "trua":  # noon: 11, 12, 1 (13:00), 2 (14:00)
        if hour in (11, 12):
            return hour
        if hour in (1, 2):
            return hour + 12
        if hour in (13, 14):
            return hour
    elif period == "chieu":  # afternoon: 1…6 → 13…18; already 24-hour 12…18 kept
        if 1 <= hour <= 6:
            return hour + 12
        if 12 <= hour <= 18:
            return hour
    elif period == "toi":  # evening: 6…11 → 18…23
        if 6 <= hour <= 11:
            return hour + 12
        if 18 <= hour <= 23:
            return hour
    elif period == "dem":  # night: 9…11 → 21…23, 12 → 0, 0…4 kept
        if 9 <= hour <= 11:
            return hour + 12
        if hour == 12:
            return 0
        if hour <= 4 or 21 <= hour <= 23:
            return hour
    raise SpokenTimeError(text, f"{hour} does not go with {period}")


def parse_time_of_day(text: str) -> time:
    """One time of day; raises :class:`SpokenTimeError` (a ``ValueError``) for anything else."""
    plain = _plain(text)
    m = _TIME.match(plain)
    if m is None:
        raise SpokenTimeError(text)
    if m["sep"] in (":", ".") and m["m"] is None:
        raise SpokenTimeError(text, "minutes missing")
    hour = int(m["h"])
    minute = 30 if m["half"] else int(m["m"] or 0)
    if hour > 23 or minute > 59:
        raise SpokenTimeError(text, "out of range")
    return time(_with_period(hour, m["period"], text), minute)


def parse_times(text: str) -> list[time]:
    """Several times of day separated by commas, semicolons or 'và': '6h30, 17 giờ' → [06:30, 17:00]; sorted,
    each once."""
    parts = [p.strip() for p in re.split(r"[,;]|\bv(?:à|a)\b", text or "") if p.strip()]
    if not parts:
        raise SpokenTimeError(text or "", "empty")
    return sorted({parse_time_of_day(p) for p in parts})


#: Days of the week as written here (no diacritics, lower case) → 0 = Monday … 6 = Sunday.
_WEEKDAY_WORDS = {"thu hai": 0, "thu 2": 0, "t2": 0, "thu ba": 1, "thu 3": 1, "t3": 1, "thu tu": 2, "thu 4": 2,
                  "t4": 2, "thu nam": 3, "thu 5": 3, "t5": 3, "thu sau": 4, "thu 6": 4, "t6": 4, "thu bay": 5,
                  "thu 7": 5, "t7": 5, "chu nhat": 6, "cn": 6}
_DAY_WORD = "|".join(sorted((re.escape(w) for w in _WEEKDAY_WORDS), key=len, reverse=True))
_DAY_RANGE = re.compile(rf"(?<![\w])({_DAY_WORD})\s*(?:-|–|—|den|toi)\s*({_DAY_WORD})(?![\w])")
_DAY_ONE = re.compile(rf"(?<![\w])({_DAY_WORD})(?![\w])")
_DAY_SETS = {"hang ngay": range(7), "moi ngay": range(7), "hang ngay trong tuan": range(5), "ngay thuong": range(5),
             "cuoi tuan": (5, 6)}


def split_days(text: str) -> tuple[str, list[int]]:
    """Days of the week said together with the time: "6h30 thứ Hai–thứ Sáu" → ("6h30", [0, 1, 2, 3, 4]);
    "18h cuối tuần" → ("18h", [5, 6]); "6h30" → ("6h30", []). Ranges wrap ("thứ Bảy–thứ Hai" = 5, 6, 0)."""
    plain = _plain(text)
    days: set[int] = set()
    for words, chosen in sorted(_DAY_SETS.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"(?<![\w]){words}(?![\w])", plain):
            days.update(chosen)
            plain = re.sub(rf"(?<![\w]){words}(?![\w])", " ", plain)
    for m in _DAY_RANGE.finditer(plain):
        first, last = _WEEKDAY_WORDS[m[1]], _WEEKDAY_WORDS[m[2]]
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    plain = _DAY_RANGE.sub(" ", plain)
    for m in _DAY_ONE.finditer(plain):
        days.add(_WEEKDAY_WORDS[m[1]])
    plain = _DAY_ONE.sub(" ", plain)
    rest = re.sub(r"\s+", " ", re.sub(r"(?<![\w])(vao|cac|ngay|tu)(?![\w])|[,;]\s*$", " ", plain)).strip(" ,;")
    return (rest if days else text.strip()), sorted(days)


def format_time(t: time) -> str:
    """24-hour 'HH:MM' (what the recurrence rules and the API take)."""
    return f"{t.hour:02d}:{t.minute:02d}"


_DAY = re.compile(r"^(?P<d>\d{1,2})[/.\-](?P<m>\d{1,2})(?:[/.\-](?P<y>\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$")


def parse_day(text: str, today: date) -> date:
    """A date as written here: 30/04/2026, 30-4-2026, 30/4 (this year), 30/4/26, or ISO 2026-04-30."""
    plain = _plain(text)
    m = _ISO.match(plain) or _DAY.match(plain)
    if m is None:
        raise SpokenTimeError(text, "not a date")
    year = int(m["y"]) if m["y"] else today.year
    if year < 100:
        year += 2000
    try:
        return date(year, int(m["m"]), int(m["d"]))
    except ValueError as exc:
        raise SpokenTimeError(text, "no such day") from exc
