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
    127.0.0.1 that every Redis and client uses; with ``zk_tls`` too, ZooKeeper and its
    clients use them as well), written under ``workdir``."""

    def __init__(
        self, workdir: Path, *, tls: bool = False, zk: bool = True, zk_tls: bool = False
    ) -> None:
        if zk_tls and not tls:
            raise ValueError("zk_tls uses the certificates that tls makes")
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
        self.ca: CertificateAuthority | None = None
        self.tls: TlsFiles | None = None
        if tls:
            self.ca = CertificateAuthority(self.dir)
            self.tls = TlsFiles(self.ca.ca_file, *self.ca.issue("cert", "127.0.0.1", "localhost"))
        #: TLS to ZooKeeper: the same CA and certificate.
        self.zk_tls: TlsFiles | None = self.tls if zk_tls else None

    def user(self, role: str) -> Secret:
        """The Redis identity of ``role`` (admin, replication, writer, reader)."""
        secret = self.credentials.redis_user(role)
        assert secret is not None
        return secret

    def redis_config(self, port: int, certificate: tuple[str, str] | None = None) -> dict[str, str]:
        """redis.conf lines: the default user off, the agent's admin user, TLS if asked
        (then the plain port is closed and ``port`` is the TLS port), with ``certificate``
        (a certificate and key of :attr:`ca`) instead of the one every Redis has."""
        admin = self.user("admin")
        config = {"user default": "off", f"user {admin.user}": f"on >{admin.password} ~* &* +@all"}
        if self.tls is not None:
            cert_file, key_file = certificate or (self.tls.cert_file, self.tls.key_file)
            config.update(
                {
                    "port": "0",
                    "tls-port": str(port),
                    "tls-cert-file": str(cert_file),
                    "tls-key-file": str(key_file),
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
        """Arguments of ``prodstate.redis.connect.connect`` and ``Link`` to connect as ``role``."""
        return {"user": self.user(role), "tls": self.tls}

    def agent_args(self) -> list[str]:
        """Options that make an agent use this material."""
        args = ["--credentials-file", str(self.credentials_file)]
        for option, files in (("--tls", self.tls), ("--zk-tls", self.zk_tls)):
            if files is not None:
                args += [f"{option}-ca-file", files.ca_file]
                args += [f"{option}-cert-file", str(files.cert_file)]
                args += [f"{option}-key-file", str(files.key_file)]
        return args

    def zk_kwargs(self) -> dict[str, Any]:
        """KazooClient arguments for this cluster's ZooKeeper (TLS, if it has it)."""
        return self.zk_tls.kazoo_kwargs() if self.zk_tls else {}


_ROLES = ("admin", "replication", "branch_replication", "writer", "reader")


def _token() -> str:
    return secrets.token_urlsafe(18)


class CertificateAuthority:
    """A throw-away CA (``trustme``'s) writing its certificate and those it issues, each
    with the names and the uses (serverAuth, clientAuth) a test asks for, under ``directory``."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        import trustme  # a test dependency: only secured test clusters need it

        self.dir = Path(directory)
        self._ca = trustme.CA()
        self.ca_file = str(self.dir / f"{name}.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    def issue(
        self, name: str, *identities: str, server: bool = True, client: bool = True
    ) -> tuple[str, str]:
        """A certificate for ``identities`` (DNS names or IP addresses) allowed to serve
        and/or to be a client; the paths of its PEM certificate and (PKCS#8) private key."""
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key = serialization.load_pem_private_key(self._ca.private_key_pem.bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self._ca.cert_pem.bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for identity in identities:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(identity)))
            except ValueError:
                names.append(x509.DNSName(identity))
        uses = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        uses += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage(uses), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_file, key_file = self.dir / f"{name}.pem", self.dir / f"{name}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(cert_file), str(key_file)
