"""`{{ moment|zoned }}` and `{{ moment|zoned:"l j F Y, H:i" }}`: a time with its zone
("26 Oct 2025, 02:30 CET"), in the active time zone (set per user by the middleware,
or by `{% timezone %}` in e-mails). See portal/times.py for why not `|date:"… T"`."""

from django import template

from portal.times import DATE_TIME, format_time

register = template.Library()


@register.filter(expects_localtime=False)
def zoned(value, fmt=DATE_TIME):
    if value in (None, ""):
        return ""
    return format_time(value, fmt)
