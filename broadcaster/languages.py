"""Languages of a ward's residents (issue 17 §3): the codes a zone lists and an announcement has versions in.

Codes are ISO 639 (two or three letters, optionally a subtag: ``km``, ``hnj``, ``cjm-VN``), lower-cased. Vietnamese
(``vi``) is the announcement itself; every other language is an :class:`~broadcaster.models.AnnouncementVersion`.
The panel's speech engines speak Vietnamese only (its normaliser reads Vietnamese numbers, dates and
abbreviations), so a version in another language is an uploaded recording by a speaker of it.
"""

from __future__ import annotations

import re

from broadcaster.errors import ServiceError

VIETNAMESE = "vi"
#: Names of the languages the ward officers are likely to need (Vietnamese first); any other valid code is
#: accepted and shown as its code.
NAMES: dict[str, str] = {
    "vi": "Tiếng Việt",
    "tyz": "Tiếng Tày",
    "nut": "Tiếng Nùng",
    "hmn": "Tiếng H'Mông",
    "hnj": "Tiếng H'Mông",
    "blu": "Tiếng H'Mông",
    "ium": "Tiếng Dao",
    "km": "Tiếng Khmer",
    "cjm": "Tiếng Chăm",
    "cja": "Tiếng Chăm",
    "rad": "Tiếng Ê Đê",
    "jra": "Tiếng Gia Rai",
    "bdq": "Tiếng Ba Na",
    "mnw": "Tiếng Mường",
    "mtq": "Tiếng Mường",
    "tdd": "Tiếng Thái",
    "zh": "Tiếng Hoa",
}
#: Languages a speech engine of the panel speaks: a version in any other one must be a recording.
SPOKEN_BY_ENGINES = frozenset({VIETNAMESE})
CODE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
MAX_LANGUAGES = 8


def check_code(code: object, field: str = "language") -> str:
    """A language code, lower-cased, or a 400 that says what a code looks like."""
    value = code.strip().lower() if isinstance(code, str) else ""
    if not CODE_RE.match(value):
        raise ServiceError("invalid_language", f"{code!r} is not a language code (ISO 639: 'vi', 'km', 'hnj'…)",
                           field)
    return VIETNAMESE if value.split("-")[0] == VIETNAMESE else value  # vi-VN is Vietnamese: the announcement


def check_list(codes: object, field: str = "languages") -> list[str]:
    """A zone's languages in order: codes (a repeat is dropped), at most :data:`MAX_LANGUAGES`; empty means
    Vietnamese."""
    if codes is None:
        return [VIETNAMESE]
    if not isinstance(codes, list) or len(codes) > MAX_LANGUAGES:
        raise ServiceError("invalid_language", f"languages: a list of up to {MAX_LANGUAGES} codes", field)
    out = list(dict.fromkeys(check_code(c, field) for c in codes))  # each once ('vi' and 'vi-VN' are one)
    return out or [VIETNAMESE]


def of_zone(stored: list[str] | None) -> list[str]:
    """What a zone's ``languages`` column means: None or empty is Vietnamese only."""
    return list(stored) if stored else [VIETNAMESE]


def name(code: str) -> str:
    return NAMES.get(code, NAMES.get(code.split("-")[0], code))
