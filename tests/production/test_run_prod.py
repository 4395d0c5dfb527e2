"""deploy/run_prod.py (`make run-prod`) refuses to start without PostgreSQL and Redis, saying so."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

RUN_PROD = Path(settings.BASE_DIR) / "deploy" / "run_prod.py"


def test_without_database_url_and_redis_url_it_stops_with_a_message_naming_both(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["RUN_PROD_DIR"] = str(tmp_path / "prod")
    result = subprocess.run([sys.executable, str(RUN_PROD)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "DATABASE_URL and REDIS_URL must be set" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "prod").exists(), "nothing is prepared before the check"
