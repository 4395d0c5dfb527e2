"""The development e-mail backend (the default outside production): one INFO log line
per e-mail, with its first link, instead of every header and body line.

Django's console backend writes whole messages to stdout, which a Celery worker logs
at WARNING, line by line: `make run` scrolled its banner away under hundreds of lines.
For the full text, set EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend.
"""

import logging
import re

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("portal.email")
LINK = re.compile(r"https?://\S+")


def summary(message) -> str:
    """`E-mail to a@example.com: "Subject" (link: http://…)`."""
    link = LINK.search(message.body or "")
    to = ", ".join(message.recipients())
    return f'E-mail to {to}: "{message.subject}"' + (f" (link: {link.group(0)})" if link else "")


class SummaryEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            logger.info(summary(message))
            sent += 1
        return sent
