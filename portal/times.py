"""Times shown to people (pages and e-mails): always with their zone.

Django's `date` filter leaves the zone out ("T" and "O" print nothing) for a
wall time that is ambiguous or skipped, so in the autumn hour that repeats two
different instants both read "02:30". Every time shown to a patient, doctor or
staff member is formatted here instead, with the zone's abbreviation (or its
offset where the zone has none), e.g. "02:30 CEST" and "02:30 CET".
"""

import functools
import zoneinfo
from datetime import datetime, tzinfo

from django.utils import dateformat, timezone, translation
from django.utils.translation import get_language

DATE_TIME = "j M Y, H:i"
LONG_DATE_TIME = "l j F Y, H:i"


def zone_label(moment: datetime) -> str:
    """The abbreviation in force at this aware, local moment ("CET", "CEST", "UTC"),
    or its UTC offset ("+0530") where the zone database has no abbreviation."""
    name = moment.tzname()
    return name if name else moment.strftime("%z")


def as_zone(time_zone: str | tzinfo | None) -> tzinfo | None:
    """A time zone from a name stored on a user; None (the active zone) when unknown."""
    if time_zone is None or isinstance(time_zone, tzinfo):
        return time_zone
    try:
        return zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def format_time(
    moment: datetime, fmt: str = DATE_TIME, time_zone: str | tzinfo | None = None, language: str | None = None
) -> str:
    """`moment` in `time_zone` (default: the active one), as Django's date format `fmt`
    (without "T" or "O"), followed by its zone: "Sunday 26 October 2025, 02:30 CET".
    `language`: the language to write in, default the active one (a batch of e-mails,
    formatting thousands of times, reads it once and passes it)."""
    local = timezone.localtime(moment, as_zone(time_zone))
    # The zone comes from the aware datetime itself: astimezone() set `fold`, so
    # the repeated hour gets its own abbreviation.
    return f"{date_format(local, fmt, language)} {zone_label(local)}"


def date_format(local: datetime, fmt: str, language: str | None = None) -> str:
    """Exactly `django.utils.dateformat.format(local, fmt)`, with the format string
    split once per format rather than on every call: splitting it and unescaping its
    literal text was half the cost of a time in an e-mail, and a sweep that escalates
    1,000 questions formats 4,000 of them.

    A format that shows nothing finer than the minute (every one the portal uses) is
    also kept per minute, zone and language: after an outage the sweep formats 10^5
    due times that fall into a few hundred minutes (the outage's length), and
    formatting them was a tenth of the catch-up's escalating. (The zones' changes in
    the years the portal shows fall on a whole minute; one at an odd second, as some
    zones had long ago, would give that minute the text of its first second.)"""
    pieces = _pieces(str(fmt))
    kept, worded = _kind(pieces)
    if not kept:
        return _render(local, pieces, language)
    # A plain tuple, not the datetime: aware datetimes compare as instants (12:00 CET
    # equals 11:00 UTC) and, within one zone, ignore `fold` (the repeated autumn hour).
    # The language only for formats with words in them (reading it costs as much as
    # the rest of a kept format), and only if the caller did not give it.
    return _minute_text(
        pieces,
        (language or get_language()) if worded else None,
        local.tzinfo,
        local.year,
        local.month,
        local.day,
        local.hour,
        local.minute,
        local.fold,
    )


def _render(local: datetime, pieces: tuple[tuple[bool, str], ...], language: str | None = None) -> str:
    """The text in `language` (None: the active one)."""
    if language is not None:
        with translation.override(language):
            return _render(local, pieces)
    formatter = dateformat.DateFormat(local)
    return "".join(str(getattr(formatter, text)()) if is_code else text for is_code, text in pieces)


@functools.lru_cache(maxsize=4096)
def _minute_text(pieces, language, zone, year, month, day, hour, minute, fold) -> str:
    """The format's text for the first instant of that minute, in `language` for a worded
    format (names of months and days; None for the others, whose text has no words)."""
    return _render(datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold), pieces, language)


# Django's format characters that show seconds or finer: "s", "u", "U" (seconds since
# the epoch), "c" (ISO 8601) and "r" (RFC 5322).
_FINER_THAN_MINUTES = frozenset("suUcr")
# Those whose text is translated: a.m./p.m., "midnight" and "noon", names of days and months.
_WORDED = frozenset("aAPbDEFlMN")


@functools.lru_cache(maxsize=128)
def _kind(pieces: tuple[tuple[bool, str], ...]) -> tuple[bool, bool]:
    """(kept per minute: nothing finer than minutes; worded: its text depends on the language)."""
    codes = {text for is_code, text in pieces if is_code}
    return not codes & _FINER_THAN_MINUTES, bool(codes & _WORDED)


@functools.lru_cache(maxsize=128)
def _pieces(fmt: str) -> tuple[tuple[bool, str], ...]:
    """`fmt` as Django's Formatter.format reads it: (True, a format character) or
    (False, literal text, its backslash escapes resolved)."""
    pieces = []
    for index, piece in enumerate(dateformat.re_formatchars.split(fmt)):
        if index % 2:
            pieces.append((True, piece))
        elif piece:
            pieces.append((False, dateformat.re_escaped.sub(r"\1", piece)))
    return tuple(pieces)
