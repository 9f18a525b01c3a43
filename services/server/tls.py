"""TLS for the gRPC servers (Core, its JobService port, Serving) and for Serving's calls to Core.

A server takes a certificate chain and its key as PEM files (`--tls-cert`, `--tls-key`), and optionally a CA
(`--tls-client-ca`) whose certificates clients must present (mutual TLS). The files are read again when they
change (their size, modification time or inode: cert-manager and Kubernetes replace a mounted Secret's files by a
symlink swap), at the next handshake, so a rotated certificate is served without a restart; a half-written or
unreadable pair keeps the previous one and says so in the log.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from provender.kernel.errors import InvalidArgument
from provender.server.settings import setting

log = logging.getLogger(__name__)


def _read(field: str, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidArgument(field, str(path), f"a readable PEM file ({e.strerror})") from None
    if b"-----BEGIN " not in data:
        raise InvalidArgument(field, str(path), "a PEM file (-----BEGIN ...)")
    return data


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: clients must present a certificate this CA signed

    @classmethod
    def from_settings(cls, cert: str, key: str, client_ca: str = "") -> ServerTls | None:
        """None when no TLS setting is given; else the checked files (InvalidArgument naming the flag)."""
        if not (cert or key or client_ca):
            return None
        if not cert or not key:
            missing = "tls_cert" if not cert else "tls_key"
            raise InvalidArgument(missing, "", "both --tls-cert and --tls-key (PEM files) to serve TLS")
        tls = cls(Path(cert), Path(key), Path(client_ca) if client_ca else None)
        tls.configuration()  # readable now, or Core or Serving does not start
        return tls

    def _files(self) -> list[tuple[str, Path]]:
        files = [("tls_cert", self.cert), ("tls_key", self.key)]
        return files + ([("tls_client_ca", self.client_ca)] if self.client_ca else [])

    def stamp(self) -> tuple[tuple[int, int, int], ...]:
        """What changes when a file is replaced or rewritten."""
        out = []
        for _, path in self._files():
            st = os.stat(path)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        files = {field: _read(field, path) for field, path in self._files()}
        return grpc.ssl_server_certificate_configuration(
            [(files["tls_key"], files["tls_cert"])], root_certificates=files.get("tls_client_ca")
        )

    def credentials(self) -> grpc.ServerCredentials:
        """Credentials that read the files again at a handshake after they changed."""
        lock = threading.Lock()
        seen = {"stamp": self.stamp()}

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            with lock:
                try:
                    stamp = self.stamp()
                    if stamp == seen["stamp"]:
                        return None
                    configuration = self.configuration()
                except (OSError, InvalidArgument) as e:
                    log.warning("TLS files changed but cannot be read; serving the previous ones: %s", e)
                    return None
                seen["stamp"] = stamp
                log.info("TLS certificate reloaded", extra={"cert": str(self.cert)})
                return configuration

        return grpc.dynamic_ssl_server_credentials(
            self.configuration(), fetch, require_client_authentication=self.client_ca is not None
        )


def channel_credentials(ca: str = "", cert: str = "", key: str = "") -> grpc.ChannelCredentials:
    """A client's TLS: trust `ca` (a PEM file; empty: the system's roots), presenting `cert` and `key` when given
    (for a server that asks for client certificates)."""
    roots = _read("core_tls_ca", Path(ca)) if ca else None
    chain = _read("tls_cert", Path(cert)) if cert else None
    private = _read("tls_key", Path(key)) if key else None
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=private, certificate_chain=chain)


@dataclass
class TlsSettings:
    """The TLS settings every server has (Core's and Serving's settings extend this)."""

    tls_cert: str = setting(
        "",
        flag="--tls-cert",
        env="TLS_CERT",
        group="tls",
        help="serve gRPC over TLS with this certificate chain (PEM); reloaded when the file changes",
    )
    tls_key: str = setting(
        "", flag="--tls-key", env="TLS_KEY", group="tls", help="the key of --tls-cert (PEM)"
    )
    tls_client_ca: str = setting(
        "",
        flag="--tls-client-ca",
        env="TLS_CLIENT_CA",
        group="tls",
        help="mutual TLS: clients must present a certificate signed by this CA (PEM)",
    )
    metrics_tls: bool = setting(
        False,
        flag="--metrics-tls",
        env="METRICS_TLS",
        group="tls",
        help="serve /metrics over HTTPS with --tls-cert and --tls-key (and --tls-client-ca)",
    )

    def server_tls(self) -> ServerTls | None:
        return ServerTls.from_settings(self.tls_cert, self.tls_key, self.tls_client_ca)
