"""A test certificate authority made with openssl (the Debian package), for TLS on loopback.

    ca = make_ca(tmp_path / "ca")                 # ca.cert: the PEM file clients trust
    server = ca.issue("prometheus")               # server.cert, server.key: for localhost
    ssl.create_default_context(cafile=ca.cert)    # what a client that trusts it uses

Keys are EC P-256 (fast to make); certificates last two days and carry what strict
verifiers ask for: basicConstraints, keyUsage, subject and authority key identifiers, and
a subjectAltName (DNS:localhost and IP:127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class ServerCert:
    cert: Path
    key: Path
    ca: Path
    """The CA certificate that signed it."""


@dataclass(frozen=True)
class CertificateAuthority:
    directory: Path
    cert: Path
    key: Path

    def issue(
        self,
        name: str,
        dns: Sequence[str] = ("localhost",),
        ips: Sequence[str] = ("127.0.0.1",),
    ) -> ServerCert:
        """A server certificate for `dns` names and `ips`, signed by this CA."""
        key, csr, cert = (self.directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        ext = self.directory / f"{name}.ext"
        san = ",".join([*(f"DNS:{d}" for d in dns), *(f"IP:{ip}" for ip in ips)])
        ext.write_text(
            f"subjectAltName={san}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n"
        )
        _openssl("req", *_EC, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(self.cert),
            "-CAkey",
            str(self.key),
            "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")),
            "-days",
            "2",
            "-out",
            str(cert),
            "-extfile",
            str(ext),
        )
        return ServerCert(cert=cert, key=key, ca=self.cert)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_ca(directory: Path, name: str = "bluegreen-test-ca") -> CertificateAuthority:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.crt", directory / "ca.key"
    _openssl(
        "req",
        "-x509",
        *_EC,
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return CertificateAuthority(directory=directory, cert=cert, key=key)
