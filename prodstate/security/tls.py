"""TLS to Redis: the CA that signs every Redis's certificate, and this machine's own pair."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from prodstate.core.model import DataError


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA to verify Redis servers, and a client certificate and key (needed
    when Redis has ``tls-auth-clients yes``, its default)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None

    def redis_kwargs(self) -> dict[str, Any]:
        """redis-py connection arguments: verify the server's certificate and its name."""
        return {
            "ssl": True,
            "ssl_ca_certs": self.ca_file,
            "ssl_certfile": self.cert_file,
            "ssl_keyfile": self.key_file,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
        }


def tls_files(ca_file: str | None, cert_file: str | None, key_file: str | None) -> TlsFiles | None:
    """TlsFiles from options (None if none is given); DataError naming what is wrong."""
    if not (ca_file or cert_file or key_file):
        return None
    if not ca_file:
        raise DataError("TLS needs a CA file (--tls-ca-file) to verify Redis servers")
    if bool(cert_file) != bool(key_file):
        raise DataError("--tls-cert-file and --tls-key-file go together")
    for path in (ca_file, cert_file, key_file):
        if path and not os.access(path, os.R_OK):
            raise DataError(f"cannot read TLS file {path}")
    return TlsFiles(ca_file, cert_file, key_file)
