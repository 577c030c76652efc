"""Vietnamese text normaliser: turns an announcement into exactly what the loudspeaker should say.

People hear a ward loudspeaker outdoors and cannot ask for a repeat, so every digit, acronym and symbol is
written out in words before the text reaches the speech engine. Readings follow the Northern standard used by
VTV/VOV. ``num2words`` is deliberately not used (its Vietnamese is wrong: 2025 → "hai nghìn lẻ hai mươi lăm").

Public API
    ``normalize(text, abbreviations=None)``  the text to be spoken: no ASCII digit left, NFC, pause
    punctuation (. , ; : ? !) kept, brackets turned into commas, whitespace collapsed.
    ``read_number(n)``  cardinal ("2025" → "hai nghìn không trăm hai mươi lăm").
    ``read_decimal(s)``  "12,75" → "mười hai phẩy bảy mươi lăm".
    ``DEFAULT_ABBREVIATIONS``  the default acronym dictionary (:mod:`audio.abbreviations`).

Numbers
    "." groups thousands (40.500), "," is the decimal mark (12,75). English "3.5"/"3.25" (one or two digits
    after a single dot) is a decimal; exactly three digits after each dot are thousands. "mốt"/"tư" only
    after "mươi", "lăm" after "mười"/"mươi", "linh" for a zero ten inside a hundred group, a zero thousands
    group is skipped ("1.000.050" → "một triệu không trăm năm mươi"). Decimals: up to three digits after the
    comma are read as a number with leading zeros as "không" ("0,05" → "không phẩy không năm"); longer
    fractions digit by digit. A number with a leading zero and three or more digits, or with more than 15
    digits, is read digit by digit.

Dates (scheme)
    d/m/yyyy, d-m-yyyy, d.m.yyyy → "ngày D tháng M năm Y". Days 1–10 are always "mùng" ("ngày mùng hai
    tháng chín", "ngày mùng chín tháng tư năm …"), month 4 is "tư", January is "tháng một". "ngày" is not
    added after "ngày", "hôm", "quốc khánh" or "mùng"/"mồng". A bare d/m (d ≤ 31, m ≤ 12) is a date, except
    that it is a ratio read "trên" when a counting noun follows ("12/20 hộ", "8/10 xã"), when a ratio word
    precedes (đạt, tỷ lệ, được, chiếm, khoảng, có, số, nhà, …) or for "24/7" — unless a date word precedes
    (ngày, hôm, sáng, trưa, chiều, tối, đêm, mùng, quốc khánh, a weekday, a time). d/m with m > 12 is always
    a ratio. "đường 3/2" → "đường ba tháng hai" (street names). m/yyyy and "T2/2025" → "tháng M năm Y";
    "quý IV/2024" → "quý bốn năm …". Ranges "15-20/3", "2-3 tháng 9" and "15/3-20/3" are read with "đến".
    d-m without a year is a date after ngày/mùng/quốc khánh/dịp/lễ/kỷ niệm/tết, in a list of such dates
    ("Nghỉ lễ 30-4 và 1-5"), or when it cannot be a range (day > 12 > month: "chào mừng 30-4"); never after a
    score word ("thắng 3-1" → "thắng ba một"). Lists share one month: "ngày 7 và 8/6" → "ngày mùng bảy và mùng
    tám tháng sáu", "từ ngày 1 đến 5/10" → "từ ngày mùng một đến mùng năm tháng mười"; "đêm 6 rạng sáng 7/9" →
    "đêm mùng sáu rạng sáng mùng bảy tháng chín".

Document numbers (scheme)
    "N/YYYY/CODE" and "N/CODE" are read in written order with the codes expanded:
    "<N> [năm <YYYY>] [<type>] của <issuer> [<rest>]". The type (NĐ nghị định, QĐ quyết định, TT thông tư,
    NQ nghị quyết, …) is dropped when the words just before the number already name it; QH/UBTVQH with a
    number take the term ("của Quốc hội khóa mười ba"); unknown codes use the abbreviation dictionary or are
    spelled with Vietnamese letter names. Examples:
    "Nghị định 49/2024/NĐ-CP" → "Nghị định bốn mươi chín năm hai nghìn không trăm hai mươi tư của Chính phủ";
    "Luật 100/2015/QH13" → "Luật một trăm năm hai nghìn không trăm mười lăm của Quốc hội khóa mười ba";
    "văn bản số 123/QĐ-UBND" → "văn bản số một trăm hai mươi ba quyết định của Ủy ban nhân dân".
    The issuer is not said when "của …" follows (optionally after the date): "Kế hoạch số 86/KH-UBND ngày
    12/3/2025 của UBND quận" → "Kế hoạch số tám mươi sáu ngày … của ủy ban nhân dân quận".

Other readings
    Times 6h45 / 17:30 → "sáu giờ bốn mươi lăm phút"; ranges "20-25" → "hai mươi đến hai mươi lăm"; phone
    numbers (0 + 9–11 digits, 1800/1900 lines, 111–115 in an emergency/phone context, any run of three or
    more digits after "điện thoại", "SĐT", "hotline", "đường dây nóng", "gọi" but not "kêu gọi", …) and
    identifiers (five or more digits after "số tài khoản", "mã số thuế", "CCCD", …) digit by digit; "thứ N"
    ordinal (1 nhất, 4 tư); Roman numerals after khóa, lần, thế kỷ, đại hội, kỳ họp, thứ, chương, phần, quý;
    units after a number (m mét, ha héc ta, °C độ xê, km/h ki lô mét một giờ, …); a price or quantity unit
    followed by "/word" is read "một word" ("đồng/tháng" → "đồng một tháng"), any other "/" between words
    is "trên"; unknown all-caps acronyms of 2–5 letters that are not Vietnamese syllables are spelled.
    Addresses keep "trên" ("số nhà 25/3" → "hai mươi lăm trên ba"); "2/3 dân số" → "hai phần ba dân số" (a small
    fraction before số/dân số/diện tích/…); two counts "12 vụ/25 đối tượng" → "mười hai vụ với hai mươi lăm đối
    tượng". "hạng/giải 1, 2, 3, 4" → "nhất, nhì, ba, tư". Coordinates "20,5°N", "107,8°E" → "… độ Vĩ Bắc",
    "… độ Kinh Đông" (after vĩ/kinh tuyến: "độ Bắc"/"độ Đông"). Money "500k" → "năm trăm nghìn", "1tr" → "một
    triệu". "111"–"115" in a list of such numbers or an emergency context are digits ("Gọi 113, 114, 115").
    Licence plates "29A-123.45" and record codes after "mã hồ sơ", "mã số", … are spelled digit by digit;
    "ĐT 741" (no colon, short) is "đường tỉnh"; "Km 15+500" → "ki lô mét mười lăm cộng năm trăm"; "7g sáng"
    → "bảy giờ sáng"; "cúm A/H5N1" → "cúm a hát năm en nờ một"; "60+ tuổi" → "sáu mươi tuổi trở lên".
    The result is idempotent: normalising the output again changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from .abbreviations import DEFAULT_ABBREVIATIONS, DOC_ISSUERS, DOC_TYPES, LETTER_NAMES

__all__ = ["DEFAULT_ABBREVIATIONS", "normalize", "read_decimal", "read_digits", "read_number", "spell"]

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_MAX_NUMBER_DIGITS = 15  # longer digit strings are codes, read digit by digit


# ------------------------------------------------------------------------------------------------ numbers


def _read_group(g: int, full: bool) -> list[str]:
    """0 < g < 1000. ``full``: a higher group was read, so "không trăm"/"linh" are needed."""
    h, t, u = g // 100, g // 10 % 10, g % 10
    words: list[str] = []
    if full or h:
        words += [_DIGITS[h], "trăm"]
    if t == 0:
        if u:
            words += ["linh", _DIGITS[u]] if (full or h) else [_DIGITS[u]]
    elif t == 1:
        words.append("mười")
        if u:
            words.append("lăm" if u == 5 else _DIGITS[u])
    else:
        words += [_DIGITS[t], "mươi"]
        if u:
            words.append({1: "mốt", 4: "tư", 5: "lăm"}.get(u, _DIGITS[u]))
    return words


def _read_below_billion(n: int, full: bool) -> list[str]:
    words: list[str] = []
    for value, unit in ((n // 1_000_000, "triệu"), (n // 1000 % 1000, "nghìn"), (n % 1000, "")):
        if not value:
            continue
        words += _read_group(value, full)
        if unit:
            words.append(unit)
        full = True
    return words


def _read_positive(n: int, full: bool) -> list[str]:
    if n >= 1_000_000_000:
        high, low = divmod(n, 1_000_000_000)
        words = [*_read_positive(high, full), "tỷ"]
        if low:
            words += _read_below_billion(low, True)
        return words
    return _read_below_billion(n, full)


def read_number(n: int) -> str:
    """Cardinal number in Northern standard Vietnamese: 21 "hai mươi mốt", 105 "một trăm linh năm",
    2025 "hai nghìn không trăm hai mươi lăm", 2.500.000.000 "hai tỷ năm trăm triệu"."""
    n = int(n)
    if n < 0:
        return "âm " + read_number(-n)
    if n == 0:
        return _DIGITS[0]
    return " ".join(_read_positive(n, False))


def read_digits(s: str) -> str:
    """Digit by digit: "0912" → "không chín một hai"; non-digits are ignored."""
    return " ".join(_DIGITS[ord(c) - 48] for c in s if "0" <= c <= "9")


def _read_int_str(s: str) -> str:
    digits = "".join(c for c in s if "0" <= c <= "9")
    if not digits:
        return _DIGITS[0]
    if len(digits) > _MAX_NUMBER_DIGITS:
        return read_digits(digits)
    return read_number(int(digits))


def _read_fraction(f: str) -> str:
    if not f:
        return _DIGITS[0]
    if len(f) > 3:
        return read_digits(f)
    rest = f.lstrip("0")
    words = [_DIGITS[0]] * (len(f) - len(rest))
    if rest:
        words.append(read_number(int(rest)))
    return " ".join(words)


_DECIMAL_RE = re.compile(r"([0-9]+(?:\.[0-9]{3})*)([,.])([0-9]+)")


def read_decimal(s: str) -> str:
    """Decimal with "," (Vietnamese) or "." (English) as the mark: "12,75" → "mười hai phẩy bảy mươi lăm",
    "7,5" → "bảy phẩy năm", "0,05" → "không phẩy không năm". "1.234,5": dots group thousands."""
    s = s.strip()
    sign = ""
    if s.startswith("-"):
        sign, s = "âm ", s[1:]
    if re.fullmatch(r"[0-9]+(?:\.[0-9]{3})*", s):
        return sign + _read_int_str(s)
    m = _DECIMAL_RE.fullmatch(s)
    if not m:
        raise ValueError(f"not a decimal number: {s!r}")
    int_part, mark, frac = m.groups()
    if mark == "." and "." in int_part:
        raise ValueError(f"ambiguous decimal: {s!r}")
    return f"{sign}{_read_int_str(int_part)} phẩy {_read_fraction(frac)}"


def _day(d: int, after_mung: bool = False) -> str:
    if 1 <= d <= 10 and not after_mung:
        return "mùng " + read_number(d)
    return read_number(d)


def _month(m: int) -> str:
    return "tư" if m == 4 else read_number(m)


def _ordinal(n: int) -> str:
    return {1: "nhất", 4: "tư"}.get(n) or read_number(n)


_ROMAN_RE = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def _roman(s: str) -> int | None:
    if not s or not _ROMAN_RE.fullmatch(s):
        return None
    total = 0
    for i, c in enumerate(s):
        v = _ROMAN_VALUES[c]
        total += -v if i + 1 < len(s) and _ROMAN_VALUES[s[i + 1]] > v else v
    return total


# ------------------------------------------------------------------------------------------------ letters

_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
_SYLLABLE_RE = re.compile(
    r"(?:NGH|NG|GH|GI|KH|NH|PH|TH|TR|CH|QU|[BCDĐGHKLMNPRSTVX])?[AĂÂEÊIOÔƠUƯY]{1,3}(?:NG|NH|CH|[CMNPT])?"
)


def _is_vietnamese_syllable(word: str) -> bool:
    bare = "".join(c for c in unicodedata.normalize("NFD", word.upper()) if c not in _TONE_MARKS)
    return bool(_SYLLABLE_RE.fullmatch(unicodedata.normalize("NFC", bare)))


def spell(token: str) -> str:
    """Spell letters with Vietnamese letter names and digits with digit names: "VTV" → "vê tê vê"."""
    out = []
    for c in token:
        if "0" <= c <= "9":
            out.append(_DIGITS[ord(c) - 48])
        elif c.isalpha():
            out.append(LETTER_NAMES.get(c.upper(), c.lower()))
    return " ".join(out)


def _is_acronym(word: str) -> bool:
    return 2 <= len(word) <= 5 and word.isupper() and word.isalpha() and not _is_vietnamese_syllable(word)


# ------------------------------------------------------------------------------------------------ helpers

_NUM = (
    r"(?:[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?"  # 1.250.000 / 1.234,5
    r"|[0-9]{1,3}(?:,[0-9]{3}){2,}"  # 1,250,000 (English grouping, unambiguous)
    r"|[0-9]+(?:\.[0-9]+){2,}"  # 1.2.3 (section numbers)
    r"|[0-9]+,[0-9]+"  # 12,75
    r"|[0-9]+\.[0-9]{1,2}(?![0-9])"  # 3.5 (English decimal)
    r"|[0-9]+)"
)


def _say_number(num: str) -> str:
    if re.fullmatch(r"[0-9]{1,3}(?:,[0-9]{3}){2,}", num):
        return _read_int_str(num)
    if "." in num and not re.fullmatch(r"[0-9]+(?:\.[0-9]{3})+(?:,[0-9]+)?|[0-9]+\.[0-9]{1,2}", num):
        return " chấm ".join(_read_int_str(p) for p in num.split("."))
    if "," in num or "." in num:
        return read_decimal(num)
    if len(num) >= 3 and num[0] == "0":
        return read_digits(num)
    return _read_int_str(num)


def _clause_before(text: str, pos: int, width: int = 40) -> str:
    """The text before ``pos`` in the same sentence (at most ``width`` characters)."""
    before = text[max(0, pos - width) : pos]
    cut = max(before.rfind("."), before.rfind("!"), before.rfind("?"), before.rfind(";"))
    return before[cut + 1 :] if cut >= 0 and not before[cut - 1 : cut].isdigit() else before


def _pad(s: str) -> str:
    return f" {s} "


# ---------------------------------------------------------------------------------------- pre-cleaning

_UNICODE_FIXES = str.maketrans(
    {
        "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u200b": "", "\ufeff": "", "\t": " ",
        "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
        "\u2026": "...", "\u00ba": "°", "\u02da": "°", "\u00b2": "2", "\u00b3": "3",
        "\uff05": "%",
    }
)  # fmt: skip
_FULLWIDTH_DIGITS = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})
_BULLET_RE = re.compile(r"^(?:[-+*•·●▪◦]+\s+|[-+*•·●▪◦](?=[^\W\d_]))")


def _join_lines(text: str) -> str:
    out: list[str] = []
    for line in text.splitlines():
        line = _BULLET_RE.sub("", line.strip()).strip()
        if not line:
            continue
        if out and not re.search(r"[.,;:?!]$", out[-1]):
            out[-1] += "."
        out.append(line)
    return " ".join(out)


# ---------------------------------------------------------------------------------------- URLs, e-mail

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_RE = re.compile(
    r"(?<![\w@.])(?:https?://)?(?:[A-Za-z0-9-]+\.)+(?:vn|com|net|org|gov|edu|info|io)(?![A-Za-z0-9])"
    r"(?:/[^\s,;()\"']*)?",
    re.IGNORECASE,
)
_URL_SEPARATORS = {
    ".": "chấm", "/": "gạch chéo", "-": "gạch ngang", "_": "gạch dưới", "@": "a còng",
    ":": "hai chấm", "?": "chấm hỏi", "=": "bằng", "&": "và", "%": "phần trăm", "#": "thăng", "+": "cộng",
}  # fmt: skip


def _say_link(m: re.Match[str]) -> str:
    s = m.group(0)
    trail = ""
    while s and s[-1] in ".,;:!?/":
        trail, s = s[-1] + trail, s[:-1]
    s = re.sub(r"^https?://", "", s, flags=re.IGNORECASE)
    s = re.sub(r"^www\.", "", s, flags=re.IGNORECASE)
    words = []
    for piece in re.split(r"([^A-Za-z0-9]|[0-9]+)", s):
        if not piece:
            continue
        if piece.isdigit():
            words.append(read_digits(piece))
        elif piece in _URL_SEPARATORS:
            words.append(_URL_SEPARATORS[piece])
        elif piece.isalnum():
            words.append(piece.lower())
    return _pad(" ".join(words)) + trail.replace("/", "")


# ---------------------------------------------------------------------------------------- dictionaries


@lru_cache(maxsize=32)
def _dictionary_regex(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    if not keys:
        return None
    alternation = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternation})(?![^\W_])")


_WORD_RE = re.compile(r"(?<![^\W_])[^\W\d_]{2,}(?![^\W_])")


def _expand_abbreviations(text: str, table: Mapping[str, str], *, spell_unknown: bool) -> str:
    rx = _dictionary_regex(tuple(k for k in table if k))
    if rx is not None:
        text = rx.sub(lambda m: _pad(table[m.group(0)]), text)
    if spell_unknown:
        text = _WORD_RE.sub(lambda m: _pad(spell(m.group(0))) if _is_acronym(m.group(0)) else m.group(0), text)
    return text


# ------------------------------------------------------------------------------------ document numbers

_DOC_RE = re.compile(
    r"(?<![\w/.,])(?P<n>[0-9]{1,6})/(?:(?P<y>(?:19|20)[0-9]{2})/)?"
    r"(?P<code>[A-ZĐ][A-Za-zĐđ]+[0-9]*(?:-[A-ZĐ][A-Za-zĐđ]*[0-9]*)*)(?![\w-])"
)
_PARTY_DOC_RE = re.compile(
    r"(?<![\w/.,\-])(?P<n>[0-9]{1,4})-(?P<code>[A-ZĐ][A-Za-zĐđ]*/[A-ZĐ][A-Za-zĐđ]*[0-9]*)(?![\w/-])"
)
_DOC_NO_CODE_RE = re.compile(r"(?i)(\bsố\s*:?\s*)([0-9]{1,6})/((?:19|20)[0-9]{2})(?![\w/-])")


_ISSUER_FOLLOWS_RE = re.compile(r"(?i)\s*,?\s*(?:ngày\s+[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-][0-9]{4}\s*,?\s*)?của(?![\w])")


def _say_doc_code(code: str, before: str, table: Mapping[str, str], issuer_follows: bool = False) -> str:
    types: list[str] = []
    issuers: list[str] = []
    rest: list[str] = []
    for part in code.split("-"):
        m = re.fullmatch(r"([A-Za-zĐđ]+)([0-9]*)", part)
        if not m:
            continue
        letters, num = m.groups()
        if letters in DOC_TYPES and not issuers:
            types.append(DOC_TYPES[letters])
        elif letters in DOC_ISSUERS:
            name = DOC_ISSUERS[letters]
            if num:
                name += (" khóa " if letters in ("QH", "UBTVQH") else " ") + read_number(int(num))
            issuers.append(name)
        else:
            word = table.get(letters) or spell(letters)
            rest.append(word + (" " + read_number(int(num)) if num else ""))
    said_before = before.lower()
    types = [t for t in types if not re.search(rf"{re.escape(t)}\s*(?:số)?\s*:?\s*$", said_before)]
    words = list(types)
    if issuers and not issuer_follows:  # "… 86/KH-UBND ngày 12/3/2025 của UBND quận": the issuer is said after
        words.append("của " + ", ".join(issuers))
    words += rest
    return " ".join(words)


def _doc_numbers(text: str, table: Mapping[str, str]) -> str:
    def say(m: re.Match[str]) -> str:
        words = [read_number(int(m["n"]))]
        if m["y"]:
            words += ["năm", read_number(int(m["y"]))]
        code = _say_doc_code(m["code"], _clause_before(text, m.start()), table, _ISSUER_FOLLOWS_RE.match(text, m.end()))
        if code:
            words.append(code)
        return _pad(" ".join(words))

    def party(m: re.Match[str]) -> str:
        before = _clause_before(text, m.start())
        code = _say_doc_code(m["code"].replace("/", "-"), before, table, _ISSUER_FOLLOWS_RE.match(text, m.end()))
        return _pad(f"{read_number(int(m['n']))} {code}")

    text = _DOC_RE.sub(say, text)
    text = _PARTY_DOC_RE.sub(party, text)
    return _DOC_NO_CODE_RE.sub(lambda m: f"{m[1]}{read_number(int(m[2]))} năm {read_number(int(m[3]))} ", text)


# ------------------------------------------------------------------------------------------ phones

_PHONE_KEYWORDS = r"số điện thoại|điện thoại|sđt|đt|hotline|đường dây nóng|tổng đài|số máy|zalo|gọi"
# identifiers (accounts, tax codes, ID cards) are read digit by digit too, from five digits up
_ID_KEYWORDS = (
    r"số tài khoản|tài khoản|stk|mã số thuế|mst|mã số|mã hồ sơ|mã định danh|số định danh|số cccd|cccd|cmnd|"
    r"căn cước công dân|căn cước|chứng minh nhân dân|số hộ chiếu"
)
_PHONE_CONTEXT_RE = re.compile(
    rf"(?<![\w])(?P<kw>{_ID_KEYWORDS}|{_PHONE_KEYWORDS})(?P<sep>\s*[:(]?\s*(?:(?:số|ngay|tới|đến|cho|là|theo)\s*:?\s+)*)"
    r"(?P<num>\+?[0-9]+(?:[ .\-][0-9]{2,})*)(?![0-9]|[.,][0-9])",
    re.IGNORECASE,
)
_PHONE_RE = re.compile(r"(?<![0-9.,/+])(?:\+84|0)[0-9]*(?:[ .\-][0-9]+)*(?![0-9])")
# file/record codes mixing letters and digits ("mã hồ sơ 000.12.34.H26-250312-0001") are spelled out
_ID_CODE_RE = re.compile(
    r"(?<![\w])((?i:mã hồ sơ|số hồ sơ|mã số hồ sơ|mã tra cứu|mã định danh|mã số|mã|số biên nhận|biên nhận))"
    r"(\s*:?\s*)((?=[A-Z0-9.\-]*[0-9])[0-9A-Z]+(?:[.\-][0-9A-Z]+)+)(?![\w]|[.\-][0-9A-Z])"
)
_HOTLINE_RE = re.compile(r"(?<![0-9.,/])(?:1800|1900)(?:[ .\-]?[0-9]){4,6}(?![0-9]|[.,][0-9])")
_SHORT_HOTLINE_RE = re.compile(r"(?<![0-9.,/])11[1-5](?![0-9]|[.,][0-9])")
_EMERGENCY_CONTEXT_RE = re.compile(
    r"(?i)(?:gọi|điện thoại|hotline|đường dây nóng|tổng đài|cấp cứu|cứu hỏa|cứu hoả|cứu hộ|cứu nạn|pccc|cnch|"
    r"công an|cảnh sát|khẩn cấp|báo cháy|trẻ em|một một (?:một|hai|ba|bốn|năm))[^.!?;]{0,50}$"
)
_SHORT_HOTLINE_FOLLOW_RE = re.compile(
    r"\s*(?:$|[.,;:!?)\-]|\s*(?:hoặc|hay|và|để|khi|ngay|miễn|của|số|hoạt động|trực|luôn|sẵn sàng|hỗ trợ|"
    r"tiếp nhận|được|nếu|trong|24)\b)"
)
_SHORT_HOTLINE_LIST_RE = re.compile(r"(?<![0-9.,/])11[1-5](?:\s*(?:,|và|hoặc|hay|/)\s*11[1-5])+(?![0-9]|[.,][0-9])")


def _say_phone_digits(num: str) -> str:
    words = read_digits(num)
    return "cộng " + words if num.startswith("+") else words


def _phones(text: str) -> str:
    def context(m: re.Match[str]) -> str:
        kw, num = m["kw"], m["num"]
        n_digits = sum(c.isdigit() for c in num)
        if n_digits < (5 if re.fullmatch(_ID_KEYWORDS, kw, re.IGNORECASE) else 3):
            return m.group(0)
        if kw.lower() == "gọi" and re.search(r"(?i)kêu\s*$", text[max(0, m.start() - 6) : m.start()]):
            return m.group(0)  # "kêu gọi 100% hộ dân" is an appeal, not a call
        if kw.lower() == "đt" and ":" not in m["sep"] and n_digits < 9:
            return m.group(0)  # "ĐT 741" is a provincial road, "ĐT: 0912…" a phone
        return f"{kw}{m['sep']}{_say_phone_digits(num)} "

    def mobile(m: re.Match[str]) -> str:
        s = m.group(0)
        pieces = re.split(r"([ .\-])", s)
        groups, seps = pieces[0::2], pieces[1::2]
        national_start = 3 if groups[0].startswith("+84") else 0
        best = 0
        count = 0
        for i, g in enumerate(groups):
            if i and len(g) < 2:
                break
            count += len(g) - (national_start if i == 0 else 0)
            lo, hi = (9, 10) if national_start else (9, 11)
            if lo <= count <= hi:
                best = i + 1
            if count > hi:
                break
        if not best:
            return s
        phone = "".join(groups[i] + (seps[i] if i < best - 1 else "") for i in range(best))
        rest = s[len(phone) :]
        return _pad(_say_phone_digits(phone)) + rest

    def hotline(m: re.Match[str]) -> str:
        digits = sum(c.isdigit() for c in m.group(0))
        return _pad(read_digits(m.group(0))) if digits in (8, 10) else m.group(0)

    def short(m: re.Match[str]) -> str:
        before = _clause_before(text, m.start(), 60)
        if _EMERGENCY_CONTEXT_RE.search(before) and _SHORT_HOTLINE_FOLLOW_RE.match(text, m.end()):
            return _pad(read_digits(m.group(0)))
        return m.group(0)

    text = re.sub(r"\((0[0-9]{1,3})\)\s*(?=[0-9])", r"\1 ", text)  # "(024) 3825 4321"
    text = _ID_CODE_RE.sub(lambda m: f"{m[1]}{m[2]}{_pad(spell(m[3]))}", text)
    text = _PHONE_CONTEXT_RE.sub(context, text)
    text = _HOTLINE_RE.sub(hotline, text)
    text = _PHONE_RE.sub(mobile, text)
    text = _SHORT_HOTLINE_LIST_RE.sub(lambda m: _pad(re.sub(r"[0-9]+", lambda d: read_digits(d[0]), m[0])), text)
    return _SHORT_HOTLINE_RE.sub(short, text)


# ------------------------------------------------------------------------------------------- vehicles, roads

_PLATE_RE = re.compile(
    r"(?<![\w.\-])([0-9]{2}[A-Z][A-Z0-9]?)\s*-\s*([0-9]{3}\.[0-9]{2}|[0-9]{4,5})(?![\w]|[.,][0-9])"
)  # licence plates "29A-123.45" → "hai chín a một hai ba bốn năm"
_ROAD_DOT_RE = re.compile(r"(?<![\w.])(QL|TL|ĐT|ĐH|HL)\.\s*(?=[0-9])")
_PROVINCIAL_ROAD_RE = re.compile(r"(?<![\w])ĐT\s*(?=[0-9]{1,4}[A-Z]?(?![0-9]|[.,][0-9]))")


def _vehicles_and_roads(text: str) -> str:
    text = _PLATE_RE.sub(lambda m: _pad(f"{spell(m[1])} {read_digits(m[2])}"), text)
    text = _ROAD_DOT_RE.sub(r"\1 ", text)
    text = re.sub(r"(?<![\w])Km\s*(?=[0-9])", "ki lô mét ", text)  # road milestone "Km 15+500"
    return _PROVINCIAL_ROAD_RE.sub("đường tỉnh ", text)  # phones after "ĐT:" were read already


# ------------------------------------------------------------------------------------------- dates

_STRONG_DATE_CONTEXT = re.compile(
    r"(?i)(?:^|[\s(,])(?:(?:hôm|sáng|trưa|chiều|tối|đêm)(?: nay| mai| qua)?|ngày|khuya|mùng|mồng|quốc khánh|"
    r"thứ\s*(?:hai|ba|tư|năm|sáu|bảy|[2-7])|chủ nhật|cn|t[2-7]|giờ|phút|[0-9]+\s?h(?:[0-9]{2})?)\s*[,(]?\s*$"
)
_RATIO_CONTEXT = re.compile(
    r"(?i)(?:^|[\s(,])(?:đạt|tỷ lệ|tỉ lệ|được|chiếm|khoảng|gần|hơn|còn|có|số|nhà|trực|phục vụ|tỷ số|kết quả|"
    r"lớp|phòng|hẻm|kiệt|ngõ|ngách|lô|căn hộ|tổ|khu)\s*:?\s*$"
)
_AFTER_NGAY = re.compile(r"(?i)(?:^|[^\w])(?:ngày|hôm|quốc khánh)\s*$")
_AFTER_MUNG = re.compile(r"(?i)(?:^|[^\w])(?:mùng|mồng)\s*$")
_AFTER_THANG = re.compile(r"(?i)(?:^|[^\w])tháng\s*$")
_AFTER_STREET = re.compile(r"(?i)(?:^|[^\w])(?:đường|phố)\s*$")  # "đường 3/2" is named after a date
_COUNT_NOUNS = (
    "hộ|người|xã|phường|thôn|tổ|khu|ấp|bản|làng|xóm|đơn vị|trường|lớp|chỉ tiêu|tiêu chí|hồ sơ|em|học sinh|"
    "cháu|trẻ|ca|lượt|điểm|cơ sở|doanh nghiệp|thửa|căn|nhà|tuyến|nhân khẩu|phiếu|ý kiến|thành viên|đại biểu|"
    "cán bộ|gia đình|nội dung|câu|mũi|liều|phần|số|xe|tàu|con|cây|km|kg|tấn|diện tích|dân số|tổng|đội"
)
_COUNT_NOUN_AFTER = re.compile(rf"(?i)\s*(?:{_COUNT_NOUNS})(?![\w])")

_Y = r"(?:1[89]|2[01])[0-9]{2}"
_NIGHT_RE = re.compile(
    rf"(?i)(?<![\w])(đêm)\s+(?:ngày\s+)?([0-9]{{1,2}})\s+(rạng sáng|rạng)\s+(?:ngày\s+)?([0-9]{{1,2}})/([0-9]{{1,2}})"
    rf"(?:/({_Y}))?(?![0-9/]|[.,][0-9])"
)  # "đêm 6 rạng sáng 7/9" → "đêm mùng sáu rạng sáng mùng bảy tháng chín"
_DATE_PAIR_RE = re.compile(
    rf"(?<![0-9/.,])([0-9]{{1,2}})/([0-9]{{1,2}})(?:/({_Y}))?\s*-\s*([0-9]{{1,2}})/([0-9]{{1,2}})(?:/({_Y}))?"
    r"(?![0-9/]|[.,][0-9])"
)
_DAY_RANGE_RE = re.compile(
    rf"(?<![0-9/.,])([0-9]{{1,2}})\s*-\s*([0-9]{{1,2}})/([0-9]{{1,2}})(?:/({_Y}))?(?![0-9/]|[.,][0-9])"
)
_DAY_RANGE_WORDS_RE = re.compile(
    r"(?i)(?<![0-9/.,])([0-9]{1,2})\s*-\s*([0-9]{1,2})\s+tháng\s+([0-9]{1,2})(?![0-9]|[/.,][0-9])"
)
_DAY_LIST_RE = re.compile(
    rf"(?i)(?<![\w])(ngày|mùng|mồng)\s+((?:[0-9]{{1,2}}\s*(?:,|và|hoặc|hay|đến|tới)\s*)+)([0-9]{{1,2}})/([0-9]{{1,2}})"
    rf"(?:/({_Y}))?(?![0-9/]|[.,][0-9])"
)  # "ngày 7 và 8/6", "các ngày 2, 3 và 4/9", "từ ngày 1 đến 5/10"
_DATE_DMY_RE = re.compile(rf"(?<![0-9/.,])([0-9]{{1,2}})([/.\-])([0-9]{{1,2}})\2({_Y})(?![0-9]|[/.,\-][0-9])")
_MONTH_YEAR_RE = re.compile(rf"(?<![0-9/.,])([0-9]{{1,2}})/({_Y})(?![0-9/]|[.,][0-9])")
_T_MONTH_RE = re.compile(rf"(?<![\w])T(1[0-2]|[1-9])/({_Y})(?![0-9])")  # "T2/2025" = tháng 2/2025
_QUARTER_RE = re.compile(rf"(?i)\b(quý)\s+([0-9]|[IV]+)\s*/\s*({_Y})(?![0-9])")
_DATE_DM_RE = re.compile(r"(?<![0-9/.,])([0-9]{1,2})/([0-9]{1,2})(?![0-9/]|[.,][0-9])")
_DATE_DM_DASH_RE = re.compile(r"(?<![\w/.,\-])([0-9]{1,2})[-.]([0-9]{1,2})(?![0-9/\-]|[.,][0-9]|\s*tháng)")
_DASH_DATE_CONTEXT = re.compile(
    r"(?i)(?:^|[^\w])(?:ngày|mùng|mồng|quốc khánh|dịp|lễ|kỷ niệm|tết)\s*"
    r"(?:[0-9]{1,2}-[0-9]{1,2}\s*(?:,|và|hoặc|đến)\s*)*$"
)
_NGAY_D_RE = re.compile(r"(?i)(?<![\w])(ngày)\s+([0-9]{1,2})(?=\s*(?:(?:tháng|đến|tới|và)(?![\w])|[,\-]))")
_MONTH_RE = re.compile(
    r"(?i)(?<![\w])(?<!mỗi )(?<!hàng )(tháng)\s+([0-9]{1,2})(?![0-9]|[.,/:][0-9])"
    r"(?!\s*(?:lần|buổi|đợt|ngày|tuần|giờ|người|hộ|lượt|kỳ|chuyến|ca|mũi|liều)(?![\w]))"
)


def _valid_dm(d: int, m: int) -> bool:
    return 1 <= d <= 31 and 1 <= m <= 12


def _dates(text: str) -> str:
    def lead(pos: int) -> tuple[str, bool]:
        """("ngày " or "", whether the day follows "mùng")."""
        before = text[max(0, pos - 16) : pos]
        if _AFTER_MUNG.search(before):
            return "", True
        return ("" if _AFTER_NGAY.search(before) else "ngày "), False

    def date_words(d: int, m: int, y: str | None, after_mung: bool = False) -> str:
        words = f"{_day(d, after_mung)} tháng {_month(m)}"
        return words + (f" năm {read_number(int(y))}" if y else "")

    def pair(m: re.Match[str]) -> str:
        d1, m1, y1, d2, m2, y2 = m.groups()
        if not (_valid_dm(int(d1), int(m1)) and _valid_dm(int(d2), int(m2))):
            return m.group(0)
        prefix, mung = lead(m.start())
        first = date_words(int(d1), int(m1), y1, mung)
        return _pad(f"{prefix}{first} đến ngày {date_words(int(d2), int(m2), y2)}")

    def day_range(m: re.Match[str]) -> str:
        d1, d2, mo, y = (int(m[1]), int(m[2]), int(m[3]), m[4])
        if not (_valid_dm(d1, mo) and _valid_dm(d2, mo) and d1 < d2):
            return m.group(0)
        prefix, mung = lead(m.start())
        return _pad(f"{prefix}{_day(d1, mung)} đến {date_words(d2, mo, y)}")

    def day_range_words(m: re.Match[str]) -> str:
        d1, d2, mo = (int(m[1]), int(m[2]), int(m[3]))
        if not (_valid_dm(d1, mo) and _valid_dm(d2, mo) and d1 < d2):
            return m.group(0)
        prefix, mung = lead(m.start())
        return _pad(f"{prefix}{_day(d1, mung)} đến {date_words(d2, mo, None)}")

    def night(m: re.Match[str]) -> str:
        d1, d2, mo = int(m[2]), int(m[4]), int(m[5])
        if not (_valid_dm(d1, mo) and _valid_dm(d2, mo)):
            return m.group(0)
        year = f" năm {read_number(int(m[6]))}" if m[6] else ""
        return _pad(f"{m[1]} {_day(d1)} {m[3]} {_day(d2)} tháng {_month(mo)}{year}")

    def day_list(m: re.Match[str]) -> str:
        days = [int(d) for d in re.findall(r"[0-9]+", m[2])] + [int(m[3])]
        mo = int(m[4])
        if not all(_valid_dm(d, mo) for d in days):
            return m.group(0)
        after_mung = m[1].lower() in ("mùng", "mồng")
        seps = [f" {w.strip()} " if w.strip() != "," else ", " for w in re.findall(r"\s*(?:,|[^\W\d_]+)\s*", m[2])]
        words = [_day(days[0], after_mung)]
        for sep, d in zip(seps, days[1:], strict=True):
            words += [sep, _day(d)]
        year = f" năm {read_number(int(m[5]))}" if m[5] else ""
        return _pad(f"{m[1]} {''.join(words)} tháng {_month(mo)}{year}")

    def dmy(m: re.Match[str]) -> str:
        d, mo = int(m[1]), int(m[3])
        if not _valid_dm(d, mo):
            return m.group(0)
        prefix, mung = lead(m.start())
        return _pad(prefix + date_words(d, mo, m[4], mung))

    def month_year(m: re.Match[str]) -> str:
        mo = int(m[1])
        if not 1 <= mo <= 12:
            return m.group(0)
        thang = "" if _AFTER_THANG.search(text[max(0, m.start() - 10) : m.start()]) else "tháng "
        return _pad(f"{thang}{_month(mo)} năm {read_number(int(m[2]))}")

    def quarter(m: re.Match[str]) -> str:
        q = int(m[2]) if m[2].isdigit() else _roman(m[2])
        if not q:
            return m.group(0)
        return f"{m[1]} {read_number(q)} năm {read_number(int(m[3]))} "

    def dm(m: re.Match[str]) -> str:
        d, mo = int(m[1]), int(m[2])
        if not _valid_dm(d, mo):
            return m.group(0)
        before = _clause_before(text, m.start(), 30)
        if _AFTER_STREET.search(before):
            return _pad(f"{read_number(d)} tháng {_month(mo)}")
        ratio = (
            _COUNT_NOUN_AFTER.match(text, m.end())
            or _RATIO_CONTEXT.search(before)
            or m.group(0) == "24/7"
            or (m.group(0) == "7/7" and re.match(r"\s*ngày", text[m.end() :]))
        )
        if ratio and not _STRONG_DATE_CONTEXT.search(before):
            return m.group(0)
        prefix, mung = lead(m.start())
        return _pad(prefix + date_words(d, mo, None, mung))

    def dm_dash(m: re.Match[str]) -> str:
        d, mo = int(m[1]), int(m[2])
        before = text[max(0, m.start() - 40) : m.start()]
        if not _valid_dm(d, mo):
            return m.group(0)
        if re.search(r"(?i)(?:tỷ số|tỉ số|thắng|thua|hòa|hoà)\s*$", before):
            return m.group(0)
        if not (_DASH_DATE_CONTEXT.search(before) or (d > 12 and d > mo and m[0][len(m[1])] == "-")):
            return m.group(0)  # "30-4" cannot be a range; "1-5" is one unless a date word precedes
        prefix, mung = lead(m.start())
        return _pad(prefix + date_words(d, mo, None, mung))

    def ngay_d(m: re.Match[str]) -> str:
        d = int(m[2])
        return f"{m[1]} {_day(d)}" if 1 <= d <= 31 else m.group(0)

    def month(m: re.Match[str]) -> str:
        mo = int(m[2])
        return f"{m[1]} {_month(mo)} " if 1 <= mo <= 12 else m.group(0)

    for rx, fn in (
        (_NIGHT_RE, night),
        (_DAY_LIST_RE, day_list),
        (_DATE_PAIR_RE, pair),
        (_DAY_RANGE_RE, day_range),
        (_DAY_RANGE_WORDS_RE, day_range_words),
        (_DATE_DMY_RE, dmy),
        (_T_MONTH_RE, lambda m: _pad(f"tháng {_month(int(m[1]))} năm {read_number(int(m[2]))}")),
        (_QUARTER_RE, quarter),
        (_MONTH_YEAR_RE, month_year),
        (_DATE_DM_RE, dm),
        (_DATE_DM_DASH_RE, dm_dash),
        (_NGAY_D_RE, ngay_d),
        (_MONTH_RE, month),
    ):
        text = rx.sub(fn, text)
    return text


# ------------------------------------------------------------------------------------------- times

_TIME_H_RE = re.compile(r"(?<![0-9.,:\w])([0-9]{1,2})\s?[hH]([0-9]{1,2})?(?:\s?(?:phút|ph|p)|['’])?(?![^\W_])")
_TIME_G_RE = re.compile(r"(?<![0-9.,:\w])([0-9]{1,2})[gG]([0-9]{2})(?:\s?(?:phút|ph|p)|['’])?(?![^\W_])")
_TIME_G_BARE_RE = re.compile(
    r"(?i)(?<![0-9.,:\w])([0-9]{1,2})\s?g"
    r"(?=\s+(?:sáng|trưa|chiều|tối|đêm|cùng ngày|ngày|hàng ngày)(?![\w]))"
)  # "7g sáng" (a bare "500g" stays grams)
_TIME_COLON_RE = re.compile(r"(?<![0-9.,:])([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?![0-9]|:[0-9])")


def _time_words(h: int, mi: int, s: int = 0) -> str:
    words = f"{read_number(h)} giờ"
    if mi:
        words += f" {read_number(mi)} phút"
    if s:
        words += f" {read_number(s)} giây"
    return words


def _times(text: str) -> str:
    def hm(m: re.Match[str]) -> str:
        h, mi = int(m[1]), int(m[2] or 0)
        return _pad(_time_words(h, mi)) if mi < 60 else m.group(0)

    def colon(m: re.Match[str]) -> str:
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        return _pad(_time_words(h, mi, s)) if h <= 24 and mi < 60 and s < 60 else m.group(0)

    text = re.sub(r"(?<![\w])(giờ)\s+00(?![0-9])(?:\s*phút(?![\w]))?", r"\1", text, flags=re.IGNORECASE)
    text = _TIME_H_RE.sub(hm, text)
    text = _TIME_G_RE.sub(hm, text)
    text = _TIME_G_BARE_RE.sub(lambda m: _pad(_time_words(int(m[1]), 0)) if int(m[1]) <= 24 else m.group(0), text)
    return _TIME_COLON_RE.sub(colon, text)


# ----------------------------------------------------------------------------- ordinals, weekdays, roman

_WEEKDAY_TOKEN_RE = re.compile(r"(?<![\w/.])T([2-7])(?![\w/])")
_ORDINAL_RE = re.compile(r"(?i)(?<![\w])(thứ)\s*([0-9]{1,3})(?![0-9]|[.,/][0-9])")
_ROMAN_CONTEXT_RE = re.compile(
    r"(?i:(?<![\w])(khóa|khoá|lần thứ|lần|thế kỷ|thế kỉ|đại hội|kỳ họp thứ|kì họp thứ|kỳ họp|kì họp|thứ|chương|"
    r"phần|quý|giai đoạn|tập|cấp|mục|khu vực|vùng|loại|nhóm|đợt|học kỳ|học kì|kỳ|kì|quân khu|quân đoàn|"
    r"sư đoàn|trung đoàn|tiểu đoàn|bậc|báo động))\s+([IVXL]+)(?![\w])"
)
_RANK_RE = re.compile(r"(?i)(?<![\w])(hạng|giải)\s+([0-9]{1,2}|[IVX]{1,4})(?![\w]|[.,/][0-9])")
_RANKS = {1: "nhất", 2: "nhì", 3: "ba", 4: "tư"}
_WEEKDAY_WORDS = r"(?:[Tt]hứ (?:hai|ba|tư|năm|sáu|bảy)|[Cc]hủ nhật|CN)"
_WEEKDAY_RANGE_RE = re.compile(rf"({_WEEKDAY_WORDS})\s*-\s*(?={_WEEKDAY_WORDS}(?![\w]))")


def _ordinals(text: str) -> str:
    text = _WEEKDAY_TOKEN_RE.sub(lambda m: _pad("thứ " + _ordinal(int(m[1]))), text)

    def roman(m: re.Match[str]) -> str:
        value = _roman(m[2])
        if not value:
            return m.group(0)
        word = _ordinal(value) if m[1].lower().endswith("thứ") else read_number(value)
        return f"{m[1]} {word}"

    def rank(m: re.Match[str]) -> str:
        value = int(m[2]) if m[2].isdigit() else _roman(m[2].upper() if m[2].isupper() else "")
        if not value:
            return m.group(0)
        return f"{m[1]} {_RANKS.get(value) or read_number(value)} "

    text = _RANK_RE.sub(rank, text)
    text = _ROMAN_CONTEXT_RE.sub(roman, text)
    text = _ORDINAL_RE.sub(lambda m: f"{m[1]} {_ordinal(int(m[2]))} ", text)
    return _WEEKDAY_RANGE_RE.sub(r"\1 đến ", text)


# ----------------------------------------------------------------------------------- numbers and units

_UNITS: dict[str, str] = {
    "km/h": "ki lô mét một giờ",
    "m/s": "mét trên giây",
    "mg/l": "mi li gam trên lít",
    "m3/s": "mét khối trên giây",
    "km2": "ki lô mét vuông",
    "m2": "mét vuông",
    "m3": "mét khối",
    "cm2": "xen ti mét vuông",
    "km": "ki lô mét",
    "cm": "xen ti mét",
    "mm": "mi li mét",
    "m": "mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "mg": "mi li gam",
    "g": "gam",
    "ml": "mi li lít",
    "l": "lít",
    "°C": "độ xê",
    "oC": "độ xê",
    "độ C": "độ xê",
    "°": "độ",
    "%": "phần trăm",
    "đ": "đồng",
    "VNĐ": "đồng",
    "VND": "đồng",
    "vnđ": "đồng",
    "vnd": "đồng",
    "USD": "đô la Mỹ",
    "k": "nghìn",
    "tr": "triệu",
    "Km/h": "ki lô mét một giờ",
    "Km": "ki lô mét",
    "Kg": "ki lô gam",
    "KG": "ki lô gam",
    "kWh": "ki lô oát giờ",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
    "W": "oát",
}
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_NUMBER_RE = re.compile(
    rf"(?:(?<![\w])(?P<pre>[A-ZĐ])(?=[0-9]))?(?<![0-9])(?P<num>{_NUM})(?![0-9])"
    rf"(?:\s*(?P<unit>{_UNIT_ALT})(?![^\W_]))?(?P<suf>[A-ZĐ](?![^\W\d_]))?"
)
_SCORE_RE = re.compile(r"(?i)((?:tỷ số|tỉ số|thắng|thua|hòa|hoà)\s+)([0-9]{1,2})\s*-\s*([0-9]{1,2})(?![0-9])")
_RANGE_RE = re.compile(r"([0-9])([A-Za-zđ°%'’]{0,4}[23]?)\s*[-~]\s*(?=[0-9])")
_MINUS_RE = re.compile(r"(?:(?<=^)|(?<=[\s(:]))-(?=[0-9])")
_PER_UNIT_WORDS = (
    r"trăm|nghìn|triệu|tỷ|đồng|tấn|tạ|yến|lít|gam|mét|vuông|khối|ta|cân|chiếc|bao|lần|buổi|đợt|ngày|tuần|tháng|quý|năm"
)
_PER_RE = re.compile(rf"(?<![\w])({_PER_UNIT_WORDS})((?:\s*/\s*[^\W\d_]+[0-9]?(?![\w]))+)")
_PER_PART_RE = re.compile(r"\s*/\s*([^\W\d_]+[0-9]?)")


_COORD_RE = re.compile(r"(?<![\w.,])(?P<num>[0-9]{1,3}(?:[.,][0-9]{1,3})?)\s*(?P<deg>°|độ)?\s*(?P<dir>[NSEW])(?![\w])")
_COORD_DIRS = {"N": ("Vĩ", "Bắc"), "S": ("Vĩ", "Nam"), "E": ("Kinh", "Đông"), "W": ("Kinh", "Tây")}
_COORD_CONTEXT_RE = re.compile(r"(?i)(?:vĩ|kinh)\s*(?:tuyến|độ)(?:\s*[0-9.,]+\s*[NSEW]?\s*(?:đến|-)|)\s*$")
_PER_DIGIT_UNIT_RE = re.compile(r"(?<=[^\W_])\s*/\s*(km2|cm2|m2|m3)(?![\w])")


# "2/3 dân số", "1/2 số hộ": a part of a whole → "hai phần ba"
_FRACTION_RE = re.compile(
    r"(?<![0-9.,/])([1-9])/([2-9]|10)(?=\s+(?:số|dân số|diện tích|tổng|kinh phí|lượng|thời gian)(?![\w]))"
)
# "12 vụ/25 đối tượng", "125 hộ/432 nhân khẩu": two counts of one thing → "với"
_COUNT_PAIR_RE = re.compile(
    r"((?<![\w.,])[0-9]+(?:[.,][0-9]+)*\s*[^\W\d_]+(?:\s[^\W\d_]+)?)\s*/\s*"
    r"(?=(?!1\s)[0-9]+(?:[.,][0-9]+)*\s+[^\W\d_])"
)


def _coordinates(text: str) -> str:
    """Coordinates: "20,5°N; 107,8°E" → "hai mươi phẩy năm độ Vĩ Bắc; một trăm linh bảy phẩy tám độ Kinh Đông"."""

    def say(m: re.Match[str]) -> str:
        before = text[max(0, m.start() - 40) : m.start()]
        in_context = _COORD_CONTEXT_RE.search(before)
        if not (m["deg"] or ((any(c in m["num"] for c in ".,") or in_context) and m["dir"] in "NE")):
            return m.group(0)
        axis, side = _COORD_DIRS[m["dir"]]
        direction = side if in_context else f"{axis} {side}"
        return _pad(f"{_say_number(m['num'])} độ {direction}")

    return _COORD_RE.sub(say, text)


def _numbers(text: str) -> str:
    def say(m: re.Match[str]) -> str:
        words = []
        if m["pre"]:
            words.append(spell(m["pre"]))
        words.append(_say_number(m["num"]))
        if m["unit"]:
            words.append(_UNITS[m["unit"]])
        if m["suf"]:
            words.append(spell(m["suf"]))
        return _pad(" ".join(words))

    text = _coordinates(text)
    text = _PER_DIGIT_UNIT_RE.sub(lambda m: f" một {_UNITS[m[1]]} ", text)
    text = _MINUS_RE.sub("âm ", text)
    text = re.sub(r"(?<=[0-9])\s*[xX×]\s*(?=[0-9])", " nhân ", text)
    text = re.sub(r"(?<=[0-9])\s*\+\s*(?=[0-9])", " cộng ", text)
    text = re.sub(r"(?<=[0-9])\+(?![0-9])(\s*tuổi(?![\w]))?", r"\1 trở lên", text)  # "60+ tuổi"
    text = re.sub(r"(?<![\w])~\s*(?=[0-9])", "khoảng ", text)
    text = re.sub(r"(?:>=|≥)\s*(?=[0-9])", " từ ", text)
    text = re.sub(r"(?:<=|≤)\s*(?=[0-9])", " không quá ", text)
    text = re.sub(r">\s*(?=[0-9])", " trên ", text)
    text = re.sub(r"<\s*(?=[0-9])", " dưới ", text)
    text = _FRACTION_RE.sub(lambda m: f"{m[1]} phần {m[2]}" if int(m[1]) < int(m[2]) else m.group(0), text)
    text = _COUNT_PAIR_RE.sub(
        lambda m: m[1] + (" trên " if re.search(rf"(?:{_PER_UNIT_WORDS}|đ|kg|g|km|m|%)$", m[1]) else " với "), text
    )
    text = re.sub(r"(?<=[^\W\d_])\s*/\s*1\s+(?=[^\W\d_])", " một ", text)  # "đồng/1 tháng"
    text = re.sub(r"(?<=[0-9])\s*/\s*(?=[0-9])", " trên ", text)
    text = _NUMBER_RE.sub(say, text)

    def per(m: re.Match[str]) -> str:
        parts = _PER_PART_RE.findall(m[2])
        return m[1] + "".join(f" một {_UNITS.get(p, p)}" for p in parts)

    return _PER_RE.sub(per, text)


# ------------------------------------------------------------------------------------------ prefixes

_PLACE_PREFIX_RE = re.compile(r"(?<![\w])(TP|Tp|TT|P|Q|X|H)\.[\s/\\|*#^~_+<>•·●▪◦\-\"“”„«»‘’'`]*(?=[0-9]|[^\W\d_]{2})")
_PLACE_PREFIXES = {"TP": "thành phố", "Tp": "thành phố", "TT": "thị trấn", "P": "phường", "Q": "quận",
                   "X": "xã", "H": "huyện"}  # fmt: skip


def _place_prefixes(text: str) -> str:
    def say(m: re.Match[str]) -> str:
        nxt = text[m.end() : m.end() + 1]
        if nxt.isdigit() or nxt.isupper():
            return _PLACE_PREFIXES[m[1]] + " "
        return m.group(0)

    text = _PLACE_PREFIX_RE.sub(say, text)
    return re.sub(r"(?<![\w])No\.\s*(?=[0-9])", "số ", text)


# ------------------------------------------------------------------------------------------- symbols


def _symbols(text: str) -> str:
    text = re.sub(r"(?<![\w])và\s*/\s*hoặc(?![\w])", "và hoặc", text)
    text = re.sub(r"(?<=[^\W\d_])\s*/\s*(?=[^\W\d_])", " trên ", text)
    text = text.replace("&", " và ").replace("@", " a còng ").replace("%", " phần trăm ")
    text = text.replace("°", " độ ").replace("$", " đô la ").replace("=", " bằng ")
    text = re.sub(r"[()\[\]{}]", ", ", text)
    text = re.sub(r"[\"“”„«»‘’'`]", " ", text)
    text = re.sub(r"(?<=[^\W_])-(?=[^\W_])", " ", text)  # glued hyphen between words
    text = re.sub(r"(?:^|\s)-+(?=\s|$)|^-+", ", ", text)  # dash used as a pause
    text = re.sub(r"[/\\|*#^~_+<>•·●▪◦-]", " ", text)
    return text


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:?!])", r"\1", text)
    text = re.sub(r",(?:\s*,)+", ",", text)
    text = re.sub(r",\s*([.;:?!])", r"\1", text)
    text = re.sub(r"([;:?!])\s*,", r"\1", text)
    text = re.sub(r"(?<!\.)\.\s*,", ".", text)
    text = re.sub(r"([,;:?!])(?=[^\s,.;:?!])", r"\1 ", text)
    text = re.sub(r"\.(?=[^\W\d_])", ". ", text)
    text = re.sub(r"^[\s,;:]+", "", text)
    text = re.sub(r"[\s,]+$", "", text)
    return text.strip()


# --------------------------------------------------------------------------------------------- entry


def normalize(text: str, *, abbreviations: Mapping[str, str] | None = None) -> str:
    """Turn an announcement into the words the loudspeaker should say (see the module docstring)."""
    table: dict[str, str] = dict(DEFAULT_ABBREVIATIONS)
    if abbreviations:
        table.update(abbreviations)
    text = unicodedata.normalize("NFC", text or "")
    text = text.translate(_UNICODE_FIXES).translate(_FULLWIDTH_DIGITS)
    text = "".join(" " if unicodedata.category(c) == "Cc" and c not in "\n\r" else c for c in text)
    text = _join_lines(text)
    text = _EMAIL_RE.sub(_say_link, text)
    text = _URL_RE.sub(_say_link, text)
    text = re.sub(r"(?i)(?<![\w])v\.\s?v\.(?:\.\.)?", " vân vân ", text)
    text = re.sub(r"(?<![\w])([AB])/(?=H[0-9]+N[0-9]+)", lambda m: spell(m[1]) + " ", text)  # cúm A/H5N1
    text = re.sub(r"(?<=[0-9])\s*in\s*(?=1(?![0-9]))", " trong ", text)  # vắc xin 6in1
    text = re.sub(r"(?<![\w])(GS|PGS|TS|ThS|BS|Bs|KS)\.\s*(?=[A-ZĐ])", r"\1 ", text)  # "PGS.TS. Nguyễn Văn A"
    text = _doc_numbers(text, table)
    text = _phones(text)
    text = _vehicles_and_roads(text)
    with_digits = {k: v for k, v in table.items() if any("0" <= c <= "9" for c in k)}
    text = _expand_abbreviations(text, with_digits, spell_unknown=False)
    text = _dates(text)
    text = _SCORE_RE.sub(r"\1\2 \3", text)
    text = _RANGE_RE.sub(r"\1\2 đến ", text)
    text = _times(text)
    text = _ordinals(text)
    text = _place_prefixes(text)
    text = _numbers(text)
    text = _expand_abbreviations(text, table, spell_unknown=True)
    text = _symbols(text)
    text = re.sub(r"[0-9]+", lambda m: _pad(read_digits(m.group(0))), text)  # safety net: no digit survives
    text = _tidy(_place_prefixes(_tidy(text)))  # "P." that only met its name once brackets were tidied away
    return unicodedata.normalize("NFC", text)
