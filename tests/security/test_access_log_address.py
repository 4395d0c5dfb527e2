"""Issue 16 (boundaries): behind nginx (TRUSTED_PROXY_COUNT=1) both access logs record
the client's address, as rate limits count it, not the proxy's: the staff admin's
Access log rows and gunicorn's request log."""

import importlib.util
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import RequestFactory

from consultations import services
from consultations.models import AccessLog
from tests.factories import QuestionFactory

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
NGINX, CLIENT, FORGED = "10.0.0.2", "203.0.113.7", "6.6.6.6"


def through_nginx():
    return RequestFactory().get("/", REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=f"{FORGED}, {CLIENT}")


@pytest.mark.django_db
def test_an_access_log_row_records_the_client_behind_the_proxy(settings, doctor, specialty):
    settings.TRUSTED_PROXY_COUNT = 1
    question = QuestionFactory(specialty=specialty)
    services.log_access(doctor.user, question, "view", request=through_nginx())
    assert AccessLog.objects.get().ip_address == CLIENT


@pytest.mark.django_db
def test_without_a_proxy_the_row_records_the_peer(settings, doctor, specialty):
    settings.TRUSTED_PROXY_COUNT = 0
    services.log_access(doctor.user, QuestionFactory(specialty=specialty), "view", request=through_nginx())
    assert AccessLog.objects.get().ip_address == NGINX


def gunicorn_logger():
    from gunicorn.config import Config

    spec = importlib.util.spec_from_file_location("gunicorn_conf", GUNICORN_CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = Config()
    config.set("logger_class", module.logger_class)
    return config.logger_class(config)


@pytest.mark.parametrize(("hops", "expected"), [(1, CLIENT), (0, NGINX)])
def test_gunicorns_request_log_names_the_client_behind_the_proxy(settings, hops, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    environ = {**through_nginx().META, "RAW_URI": "/"}
    response = SimpleNamespace(status="200 OK", sent=12, headers=[])
    atoms = gunicorn_logger().atoms(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=5))
    assert atoms["h"] == expected


@pytest.mark.parametrize("path", ["Procfile", "deploy/Procfile.prod", "deploy/systemd/portal-web@.service"])
def test_every_gunicorn_runs_with_the_deploy_config(path):
    lines = [line for line in (ROOT / path).read_text().splitlines() if "gunicorn portal.wsgi" in line]
    assert lines, path
    for line in lines:
        assert "--config deploy/gunicorn.conf.py" in line, line
