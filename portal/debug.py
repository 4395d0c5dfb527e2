"""What Django's error pages and error e-mails may show (DEFAULT_EXCEPTION_REPORTER_FILTER).

Django hides settings whose names contain API, AUTH, TOKEN, KEY, SECRET, PASS or
SIGNATURE. Connection URLs carry passwords under other names (REDIS_URL,
CELERY_BROKER_URL, the cache's LOCATION, a DATABASE_URL environment variable in
request.META under runserver), so this filter also hides names that usually hold
one, and blanks the password of any "scheme://user:password@host" it meets in a
setting, a request header or a traceback's variable, whatever it is called.
"""

import re

from django.views.debug import SafeExceptionReporterFilter

# "redis://:secret@host", "postgres://user:secret@host/db": keep all but the password.
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)


def without_url_passwords(text: str, substitute: str) -> str:
    return _PASSWORD_IN_URL.sub(lambda match: f"{match['head']}{substitute}@", text)


class PortalExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL$|LOCATION|DSN|BROKER|CREDENTIAL", flags=re.I
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return without_url_passwords(cleansed, self.cleansed_substitute)
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, self._scrub(value)) for name, value in super().get_traceback_frame_variables(request, tb_frame)]

    def _scrub(self, value):
        """A traceback variable with URL passwords blanked, looking inside plain containers."""
        if isinstance(value, str):
            return without_url_passwords(value, self.cleansed_substitute)
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(item) for item in value)
        return value
