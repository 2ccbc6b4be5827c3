"""Certificates for the gRPC bridge tests, made with the ``cryptography`` package.

Peers of an upstream mesh share one self-signed certificate. It must carry the names peers
are dialled by in its subjectAltName: Go refuses a certificate that only has a Common Name.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import NamedTuple

PEER_NAME = "sacsock-peer"  # the cn of `cn@host:port` peer entries in the tests


class CertPair(NamedTuple):
    cert: str
    key: str


def make_cert(directory: Path | str, stem: str = "peer", names: tuple[str, ...] = (PEER_NAME, "localhost"),
              ips: tuple[str, ...] = ("127.0.0.1",)) -> CertPair:
    """A self-signed EC certificate (and its key) for ``names`` and ``ips``, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(directory)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return CertPair(str(cert_path), str(key_path))
