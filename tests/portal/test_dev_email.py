"""The development e-mail backend: one INFO line per e-mail, with its first link (issue 15,
`make run`: hundreds of WARNING lines of e-mail scrolled the banner away)."""

import logging

from django.core.mail import EmailMessage, get_connection

from portal.production import email_backend_problem


def test_each_e_mail_is_one_info_line_with_its_link(caplog):
    connection = get_connection("portal.dev_email.SummaryEmailBackend")
    message = EmailMessage(
        "Your question was answered",
        "Hello,\n\nDr. Nora Whitfield answered.\nRead it: http://127.0.0.1:8790/questions/7/\n\nAsk a Doctor",
        to=["patient@example.com"],
    )
    with caplog.at_level(logging.INFO, logger="portal.email"):
        assert connection.send_messages([message, EmailMessage("No one", "to", to=[])]) == 1
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        'E-mail to patient@example.com: "Your question was answered" (link: http://127.0.0.1:8790/questions/7/)'
    )


def test_production_refuses_it():
    assert "logs one line per e-mail" in email_backend_problem("portal.dev_email.SummaryEmailBackend")
