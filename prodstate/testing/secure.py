"""A secured test cluster's material, made at test time: credentials, Redis users, certificates.

Passwords are random per run and certificates come from a throw-away CA (``trustme``);
nothing secret is ever stored in the repository.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from prodstate.security.credentials import Credentials, Secret, load_credentials
from prodstate.security.tls import TlsFiles


class SecureSetup:
    """Credentials for every role (and, with ``tls``, a CA and one certificate for
    127.0.0.1 that every Redis and client uses), written under ``workdir``."""

    def __init__(self, workdir: Path, *, tls: bool = False, zk: bool = True) -> None:
        self.dir = Path(workdir) / "secure"
        self.dir.mkdir(parents=True, exist_ok=True)
        roles = {r: Secret(f"ps-{r}", _token()) for r in _ROLES}
        lines = []
        if zk:
            lines += ["[zookeeper]", 'user = "ps-agents"', f'password = "{_token()}"']
        for role, secret in roles.items():
            lines += [
                f"[redis.{role}]",
                f'user = "{secret.user}"',
                f'password = "{secret.password}"',
            ]
        self.credentials_file = self.dir / "credentials.toml"
        self.credentials_file.touch(mode=0o600)
        self.credentials_file.write_text("\n".join(lines) + "\n")
        self.credentials: Credentials = load_credentials(str(self.credentials_file), environ={})
        self.tls: TlsFiles | None = _make_certificates(self.dir) if tls else None

    def user(self, role: str) -> Secret:
        """The Redis identity of ``role`` (admin, replication, writer, reader)."""
        secret = self.credentials.redis_user(role)
        assert secret is not None
        return secret

    def redis_config(self, port: int) -> dict[str, str]:
        """redis.conf lines: the default user off, the agent's admin user, TLS if asked
        (then the plain port is closed and ``port`` is the TLS port)."""
        admin = self.user("admin")
        config = {"user default": "off", f"user {admin.user}": f"on >{admin.password} ~* &* +@all"}
        if self.tls is not None:
            config.update(
                {
                    "port": "0",
                    "tls-port": str(port),
                    "tls-cert-file": str(self.tls.cert_file),
                    "tls-key-file": str(self.tls.key_file),
                    "tls-ca-cert-file": self.tls.ca_file,
                    "tls-auth-clients": "yes",
                    "tls-replication": "yes",
                }
            )
        return config

    def client_options(self, role: str = "admin") -> dict[str, Any]:
        """redis-py arguments for connecting as ``role``."""
        secret = self.user(role)
        options: dict[str, Any] = {"username": secret.user, "password": secret.password}
        return {**options, **(self.tls.redis_kwargs() if self.tls else {})}

    def connect_options(self, role: str = "admin") -> dict[str, Any]:
        """``prodstate.redis.control.connect`` arguments for connecting as ``role``."""
        return {"user": self.user(role), "tls": self.tls}

    def agent_args(self) -> list[str]:
        """Options that make an agent use this material."""
        args = ["--credentials-file", str(self.credentials_file)]
        if self.tls is not None:
            args += ["--tls-ca-file", self.tls.ca_file]
            args += ["--tls-cert-file", str(self.tls.cert_file)]
            args += ["--tls-key-file", str(self.tls.key_file)]
        return args


_ROLES = ("admin", "replication", "writer", "reader")


def _token() -> str:
    return secrets.token_urlsafe(18)


def _make_certificates(directory: Path) -> TlsFiles:
    import trustme  # a test dependency: only secured test clusters need it

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(
        str(directory / "ca.pem"), str(directory / "cert.pem"), str(directory / "key.pem")
    )
    ca.cert_pem.write_to_path(files.ca_file)
    cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    Path(str(files.key_file)).chmod(0o600)
    return files
