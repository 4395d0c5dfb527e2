"""The e-mail backend of the fault tests' processes: Django's file backend, one complete
file per message, and an optional pause so a test can kill the sender at a chosen moment.

FAULT_MAIL_PAUSE_SECONDS (default 0) and FAULT_MAIL_PAUSE ("before" or "after"
handing the message over, i.e. writing its file) come from the environment. At
each pause the backend first writes a marker file into FAULT_MAIL_MARKERS, so the
test knows the sender is stuck right there.
"""

import os
import time
import uuid
from datetime import datetime
from pathlib import Path

from django.core.mail.backends import filebased


class FaultFileBackend(filebased.EmailBackend):
    def send_messages(self, email_messages):
        pause = float(os.environ.get("FAULT_MAIL_PAUSE_SECONDS", "0"))
        when = os.environ.get("FAULT_MAIL_PAUSE", "before")
        sent = 0
        for message in email_messages:
            if pause and when == "before":
                self._pause(pause, "before", message)
            self._hand_over(message)
            sent += 1
            if pause and when == "after":
                self._pause(pause, "after", message)
        return sent

    def _hand_over(self, message) -> None:
        # Written aside, then renamed: a sender killed half-way leaves no half e-mail
        # behind, and two processes never share a file (the base class names files
        # by second and object id, which can collide between identical workers).
        name = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex}"
        partial = Path(self.file_path) / f"{name}.partial"
        partial.write_bytes(message.message().as_bytes() + b"\n")
        os.replace(partial, partial.with_suffix(".log"))

    def _pause(self, seconds: float, when: str, message) -> None:
        markers = Path(os.environ["FAULT_MAIL_MARKERS"])
        markers.mkdir(parents=True, exist_ok=True)
        (markers / f"{uuid.uuid4().hex}.txt").write_text(f"{when}\n{message.to[0]}\n{message.subject}\n")
        time.sleep(seconds)
