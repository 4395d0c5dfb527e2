"""Which database errors are passing blips rather than bugs."""

from django.db import InterfaceError, OperationalError

# A lost or killed connection, a server restarting, a serialisation failure or
# a deadlock: the transaction was rolled back as a whole and the same work may
# simply be tried again.
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)
