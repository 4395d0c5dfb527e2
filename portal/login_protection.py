"""Login protection beyond django-axes' per-pair lockout: ceilings against password spraying.

django-axes pauses one (e-mail, address) pair after AXES_FAILURE_LIMIT wrong
passwords. A sprayer tries a few passwords on many accounts from one address,
or one account from many addresses, and never trips a pair. So, over the same
cool-off window, two more ceilings:

- per address, across every e-mail tried: LOGIN_IP_FAILURE_LIMIT;
- per account, across every address: LOGIN_ACCOUNT_FAILURE_LIMIT.

Reaching one pauses sign-in for that address (or that account) like a pair
lockout, and writes a WARNING line starting "Login ceiling reached" for staff to
alert on. A password reset by e-mail lifts an account's pause, as it does a pair's.
"""

import logging

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum

logger = logging.getLogger(__name__)

ADDRESS, ACCOUNT = "address", "account"


def recent_failures(request, **match) -> int:
    """Failed sign-ins within the cool-off window, summed over every matching pair."""
    recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request), **match)
    return recent.aggregate(total=Sum("failures_since_start"))["total"] or 0


def ceiling_reached(request, credentials=None) -> str | None:
    """ADDRESS or ACCOUNT when that ceiling is reached, else None."""
    ip_address = getattr(request, "axes_ip_address", None)
    if ip_address and recent_failures(request, ip_address=ip_address) >= settings.LOGIN_IP_FAILURE_LIMIT:
        return ADDRESS
    username = get_client_username(request, credentials)
    if username and recent_failures(request, username=username) >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
        return ACCOUNT
    return None


class PortalAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler plus the two spraying ceilings (AXES_HANDLER)."""

    def is_locked(self, request, credentials=None) -> bool:
        if super().is_locked(request, credentials):
            return True
        reason = ceiling_reached(request, credentials)
        if reason:
            request.login_ceiling = reason
            logger.info("Login refused by the %s ceiling: %s", reason, _who(request, credentials))
        return reason is not None

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if request is None or getattr(request, "axes_locked_out", False):
            return
        reason = ceiling_reached(request, credentials)
        if reason is None:
            return
        logger.warning(
            "Login ceiling reached (%s): %s; sign-in paused for the cool-off time", reason, _who(request, credentials)
        )
        request.login_ceiling = reason
        request.axes_locked_out = True
        request.axes_credentials = credentials
        user_locked_out.send(
            "axes",
            request=request,
            username=get_client_username(request, credentials),
            ip_address=request.axes_ip_address,
        )


def _who(request, credentials) -> str:
    return f"address {request.axes_ip_address}, account {get_client_username(request, credentials)!r}"
