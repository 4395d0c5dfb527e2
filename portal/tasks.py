"""Celery tasks of the accounts: thin wrappers that take ids and call plain functions."""

from celery import shared_task

from portal import account_emails


@shared_task(ignore_result=True)
def send_password_reset_email(user_id: int | None) -> bool:
    """Queued by the reset form with the user's id only: the link is made here, never stored."""
    return account_emails.send_password_reset(user_id)


@shared_task(ignore_result=True)
def send_signup_email(user_id: int) -> str | None:
    """Queued by every sign-up with the account's id: the worker decides which e-mail, and makes any link."""
    return account_emails.send_signup_email(user_id)
