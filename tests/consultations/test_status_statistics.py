"""The open-queue estimates at 10^7 stored questions depend on how many rows ANALYZE samples
for Question.status (migration 0011, issue 17). Reproducing the misestimate needs millions
of rows, which `make bench` loads (BENCH_BIG=1); here: the setting is in place."""

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL planner setting")
def test_analyze_samples_enough_rows_to_see_the_few_open_questions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'consultations_question'::regclass "
            "AND attname = 'status'"
        )
        (target,) = cursor.fetchone()
    # 300 x 1,000 rows sampled: about 30 open questions among 10^7 stored make the most-common values.
    assert target == 1000
