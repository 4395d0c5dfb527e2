"""gunicorn's settings for every web process (Procfile, deploy/Procfile.prod, the
systemd unit): `gunicorn portal.wsgi --config deploy/gunicorn.conf.py ...`.

Behind nginx every request comes from the proxy, so the request log's address (%(h)s)
would name nginx for everyone. This logger writes the client's address instead, found
the way rate limits find it (portal.client_address, TRUSTED_PROXY_COUNT).
"""

from gunicorn.glogging import Logger


class ClientAddressLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        # Imported here: the worker has loaded Django's settings (portal.wsgi) by the time it logs.
        from portal.client_address import client_address

        atoms["h"] = client_address(environ) or "-"
        return atoms


logger_class = ClientAddressLogger
