"""Dates as the rest of the product writes them ("2 Dec 2026, 00:55", portal/times.py),
for what Django formats itself: the admin's lists and read-only fields, and `date`
without a format. Only these names: Django's own English module supplies the rest."""

from portal.times import DATE_TIME

DATETIME_FORMAT = DATE_TIME
SHORT_DATETIME_FORMAT = DATE_TIME
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
