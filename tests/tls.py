"""TLS for tests: a test's own certificate authority (a CA, and certificates it signs for 127.0.0.1 and localhost,
good for servers and clients alike, written as PEM files), and Core and Serving started on TLS with them."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from provender.core.app import CoreSettings, start_core
from provender.local.ports import free_port
from provender.serving.app import ServingSettings, start_serving


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


class TestCA:
    """A CA written to `<folder>/ca.pem`; `issue(name)` writes `<name>.pem` and `<name>-key.pem`."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str = "Provender test CA") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = folder / "ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        name: str,
        folder: Path | None = None,
        *,
        organizations: tuple[str, ...] = (),
        hosts: tuple[str, ...] = (),
    ) -> Pair:
        """`organizations`: the subject's O (Kubernetes reads a client certificate's O as its groups); `hosts`: more
        DNS names and IP addresses it is good for, beside localhost and 127.0.0.1."""
        folder = folder or self.folder
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
        subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        pair = Pair(folder / f"{name}.pem", folder / f"{name}-key.pem")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(_pem_key(key))
        return pair


_counter = iter(range(1_000_000))


@contextmanager
def tls_platform(postgres, redis_server, base: Path, ca: TestCA, **core: Any) -> Iterator[dict[str, str]]:
    """Core (with a JobService port of its own) and Serving on TLS with one certificate of `ca`, Serving trusting
    `ca` for Core and presenting that certificate; yields the addresses: core, jobs, serving. `core`: more
    CoreSettings (tls_client_ca=... for mutual TLS)."""
    server = ca.issue(f"server-{next(_counter)}")
    running = start_core(
        CoreSettings(
            postgres_url=postgres.create_database(f"tls_{os.getpid()}_{next(_counter)}"),
            port=0,
            job_port=(job_port := free_port()),
            host="127.0.0.1",
            staging_location=(base / "staging").as_uri(),
            launcher_work_dir=str(base / "launcher"),
            redis_url=redis_server.url,
            tls_cert=str(server.cert),
            tls_key=str(server.key),
            **core,
        )
    )
    serving = None
    try:
        serving = start_serving(
            ServingSettings(
                redis_url=redis_server.url,
                core_url=f"127.0.0.1:{running.port}",
                port=0,
                host="127.0.0.1",
                tls_cert=str(server.cert),
                tls_key=str(server.key),
                core_tls_ca=str(ca.path),
                spec_refresh_seconds=0.2,
            ),
            registry=CollectorRegistry(),
        )
        yield {
            "core": f"127.0.0.1:{running.port}",
            "jobs": f"127.0.0.1:{job_port}",
            "serving": f"127.0.0.1:{serving.running.port}",
        }
    finally:
        if serving is not None:
            serving.running.stop(grace=1)
        running.stop(grace=1)
