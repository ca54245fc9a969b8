"""TLS to Redis and to ZooKeeper: the CA that signs the servers' certificates, this
machine's own pair, and the check that a Redis about to become a master holds a
certificate for its address."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prodstate.core.model import DataError, parse_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA to verify servers (Redis, or ZooKeeper), and a client certificate
    and key (needed when Redis has ``tls-auth-clients yes``, its default, or ZooKeeper
    ``ssl.clientAuth=need``, its default)."""

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

    def kazoo_kwargs(self) -> dict[str, Any]:
        """KazooClient arguments: verify the server's certificate and its name."""
        return {
            "use_ssl": True,
            "ca": self.ca_file,
            "certfile": self.cert_file,
            "keyfile": self.key_file,
            "verify_certs": True,
            "check_hostname": True,
        }

    def context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only and checks the server's name and
        purpose (a certificate that names its uses must allow serverAuth)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file, password=_no_password)
        return context


def _no_password() -> str:
    return ""  # an encrypted key then fails to load, instead of OpenSSL asking on a terminal


def tls_files(
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    *,
    option: str = "--tls",
    servers: str = "Redis servers",
) -> TlsFiles | None:
    """TlsFiles from the options ``{option}-ca-file``, ``-cert-file`` and ``-key-file``
    (None if none is given); DataError naming what is wrong, files that do not load too."""
    if not (ca_file or cert_file or key_file):
        return None
    if not ca_file:
        raise DataError(f"TLS needs a CA file ({option}-ca-file) to verify {servers}")
    if bool(cert_file) != bool(key_file):
        raise DataError(f"{option}-cert-file and {option}-key-file go together")
    for path in (ca_file, cert_file, key_file):
        if path and not os.access(path, os.R_OK):
            raise DataError(f"cannot read TLS file {path}")
    files = TlsFiles(ca_file, cert_file, key_file)
    try:
        ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, ValueError):
        raise DataError(f"{ca_file} holds no PEM certificate ({option}-ca-file)") from None
    try:
        files.context()
    except ssl.SSLError as exc:
        raise DataError(
            f"{cert_file} and {key_file} are not a PEM certificate and its unencrypted "
            f"private key ({option}-cert-file, {option}-key-file): {exc.reason or exc}"
        ) from None
    return files


class UntrustedServer(OSError):
    """A server whose certificate is not valid for the address it was reached at."""


def check_server(address: str, tls: TlsFiles, timeout: float = 1.0) -> None:
    """Open a TLS connection to ``address`` with the CA of ``tls`` and check the certificate
    it presents: signed by that CA, valid for the address's host (its DNS name, or for an IP
    address an IP entry of the subject alternative names) and for a server.

    Redis checks only the CA when it connects to its master, so anyone holding a certificate
    of the CA (for another machine, or a client's when it may serve) who can sit at an
    address could pose as the master there. UntrustedServer if the certificate is refused;
    OSError if nothing answers at ``address``."""
    host, port = parse_address(address)
    context = tls.context()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or str(exc)
        raise UntrustedServer(f"the TLS certificate of {address} is refused: {reason}") from None


@dataclass(frozen=True)
class _Refusal:
    reason: str
    delay: float
    until: float


class ServerChecks:
    """:func:`check_server` before this agent makes a Redis replicate from an address, one
    TLS handshake per move (no check without TLS).

    An address refused is refused again without a handshake for 1 s, then 2, 4 ... up to
    ``cap`` seconds each time it is refused again, and is listed by :meth:`refused`
    meanwhile, so that the decisions can leave it out instead of trying it every tick."""

    def __init__(
        self,
        tls: TlsFiles | None,
        *,
        timeout: float = 1.0,
        first: float = 1.0,
        cap: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tls = tls
        self.timeout = timeout
        self.first, self.cap = first, cap
        self._clock = clock
        self._refusals: dict[str, _Refusal] = {}

    def check(self, address: str) -> None:
        """Return if a Redis may replicate from ``address``; UntrustedServer if its
        certificate is refused (now or lately), OSError if it cannot be reached."""
        if self.tls is None:
            return
        now = self._clock()
        last = self._refusals.get(address)
        if last is not None and last.until > now:
            raise UntrustedServer(f"{last.reason} (checked again in {last.until - now:.1f}s)")
        try:
            check_server(address, self.tls, self.timeout)
        except UntrustedServer as exc:
            delay = self.first if last is None else min(self.cap, last.delay * 2)
            self._refusals[address] = _Refusal(str(exc), delay, now + delay)
            log.warning(
                "refusing to replicate from a Redis whose TLS certificate is not valid for "
                "its address",
                extra={"address": address, "error": str(exc), "retry_in": delay},
            )
            raise
        self._refusals.pop(address, None)

    def refused(self, now: float) -> frozenset[str]:
        """The addresses refused lately, not to be followed at ``now`` (monotonic)."""
        return frozenset(a for a, refusal in self._refusals.items() if refusal.until > now)
