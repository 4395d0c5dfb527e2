"""`make run` without REDIS_URL uses Kombu's filesystem transport: each of its processes
starts without a warning, and a message put on the queue comes off it."""

import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import logging, os
import django
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
django.setup()
from portal.celery import app
with app.connection_for_write() as connection:
    queue = connection.SimpleQueue("zero-setup-probe")
    queue.put({"hello": "worker"})
    message = queue.get(timeout=5)
    message.ack()
    queue.close()
print(app.conf.broker_url, message.payload)
"""


def test_the_embedded_broker_starts_quietly_and_carries_a_message(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "VAR_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"})
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "filesystem://localhost// {'hello': 'worker'}"
    assert "No hostname was supplied" not in result.stderr, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
