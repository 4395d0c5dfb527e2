"""How the figures read: durations, shares and local times, shared by the page, the CSV and the JSON."""

from datetime import datetime
from functools import cached_property

from django.utils import dateformat, timezone

from portal import times


def format_duration(seconds: float | None) -> str:
    """A duration as staff read it: "2 h 05 min", "3 d 4 h", "12 min"; a dash for none."""
    if seconds is None:
        return "–"
    minutes = round(abs(seconds) / 60)
    if minutes == 0:
        return "< 1 min"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def format_share(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f} %"


def minutes(seconds: float | None) -> str:
    """Minutes with one decimal, for the CSV; blank for none."""
    return "" if seconds is None else f"{seconds / 60:.1f}"


def percent(share: float | None) -> str:
    """A share as a percentage with one decimal, for the CSV; blank for none."""
    return "" if share is None else f"{share * 100:.1f}"


class LocalTime:
    """A moment in the viewer's time zone, as the lists show it: formatted once per row in Python
    (the same output as the template's `date` filter, without its cost on every row)."""

    def __init__(self, moment: datetime):
        self.moment = timezone.localtime(moment)

    @cached_property
    def iso(self) -> str:
        return dateformat.format(self.moment, "c")

    @cached_property
    def display(self) -> str:
        return times.format_time(self.moment, "j M, H:i")
