"""Key material of a sandbox, generated once per state folder with ``cryptography`` and reused afterwards.

Files (all in the state folder):
- ``ca.pem`` / ``ca-key.pem``: the CA (EC P-256) that clients trust (``PROVISION_CA_BUNDLE``);
- ``server.pem`` / ``server-key.pem``: the TLS certificate for 127.0.0.1 / localhost / ::1, signed by the CA;
- ``signing-key.pem``: RSA 2048 key signing the access tokens (RS256; published at the jwks_uri);
- ``app-cert.pem``: the app's certificate credential (self-signed RSA 2048) plus its private key, encrypted
  with the generated ``certificate_password``;
- ``credentials.json``: the generated client secret and certificate password (mode 0600).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyMaterial:
    """Paths and secrets of one state folder."""

    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    signing_key: rsa.RSAPrivateKey
    signing_kid: str
    app_cert_path: Path
    app_cert_password: str
    app_public_key: Any
    app_thumbprint_sha1: str
    app_thumbprint_sha256: str
    client_secret: str

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set publishing the token-signing key."""
        nums = self.signing_key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.signing_kid,
                          "n": b64(nums.n), "e": b64(nums.e)}]}


log = logging.getLogger(__name__)


def _is_windows() -> bool:
    return sys.platform == "win32"


def _restrict_to_owner(path: Path, fd: int) -> None:
    """Readable by its owner only: mode 0600 on POSIX; on Windows (where the mode only sets the read-only flag) an
    ACL of one entry for the current user through ``icacls``, or a warning that the file is as private as its
    folder. (The tool's own is :func:`provisioning.portable.restrict_to_owner`; the sandbox imports none of it.)"""
    if not _is_windows():
        os.fchmod(fd, 0o600)
        return
    user = os.environ.get("USERNAME", "")
    account = f"{os.environ['USERDOMAIN']}\\{user}" if os.environ.get("USERDOMAIN") else user
    icacls = shutil.which("icacls")
    if icacls and user:
        try:
            if subprocess.run([icacls, str(path), "/inheritance:r", "/grant:r", f"{account}:F"],
                              capture_output=True, check=False, timeout=30).returncode == 0:
                return
        except (OSError, subprocess.SubprocessError):
            pass
    log.warning("%s could not be made private to your account (icacls failed); it is only as private as its "
                "folder", path)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable by its owner only from the first byte on (a temporary file made
    private before it is written, then renamed over ``path``)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        _restrict_to_owner(tmp, fd)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    if private:
        write_private(path, data)
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: x509.Name, key_pub: Any, signer: CertificateIssuerPrivateKeyTypes,
          *, ca: bool, san: bool = False, issuer_pub: Any = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer).public_key(key_pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key_pub), critical=False)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                      key_encipherment=not ca, data_encipherment=False, key_agreement=False,
                                      key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                      decipher_only=False), critical=True))
    if issuer_pub is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return b.sign(signer, hashes.SHA256())


def _pem_key(key: PrivateKeyTypes, password: str | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _tls(state: Path) -> tuple[Path, Path, Path]:
    ca_path, ca_key_path = state / "ca.pem", state / "ca-key.pem"
    srv_path, srv_key_path = state / "server.pem", state / "server-key.pem"
    if not (ca_path.exists() and ca_key_path.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _cert("Contoso sandbox CA", _name("Contoso sandbox CA"), ca_key.public_key(), ca_key, ca=True)
        _write(ca_key_path, _pem_key(ca_key), private=True)
        _write(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        srv_path.unlink(missing_ok=True)
    if not (srv_path.exists() and srv_key_path.exists()):
        issuer_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)  # written above, by this function
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        srv_key = ec.generate_private_key(ec.SECP256R1())
        srv_cert = _cert("127.0.0.1", ca_cert.subject, srv_key.public_key(), issuer_key,
                         ca=False, san=True, issuer_pub=issuer_key.public_key())
        _write(srv_key_path, _pem_key(srv_key), private=True)
        _write(srv_path, srv_cert.public_bytes(serialization.Encoding.PEM))
    return ca_path, srv_path, srv_key_path


def _credentials(state: Path) -> dict[str, str]:
    path = state / "credentials.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    creds = {"client_secret": "sbx~" + secrets.token_urlsafe(30), "certificate_password": secrets.token_urlsafe(18)}
    _write(path, json.dumps(creds).encode(), private=True)
    return creds


def load_or_create(state: Path) -> KeyMaterial:
    """Load the state folder's key material, generating whatever is missing."""
    state.mkdir(parents=True, exist_ok=True)
    ca_path, srv_path, srv_key_path = _tls(state)
    creds = _credentials(state)
    sk_path = state / "signing-key.pem"
    if sk_path.exists():
        signing = serialization.load_pem_private_key(sk_path.read_bytes(), None)
    else:
        signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(sk_path, _pem_key(signing), private=True)
    assert isinstance(signing, rsa.RSAPrivateKey)
    spki = signing.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha1(spki).digest()).rstrip(b"=").decode()
    app_path = state / "app-cert.pem"
    if app_path.exists():
        cert = x509.load_pem_x509_certificate(app_path.read_bytes())
    else:
        app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _cert("CN=bulk-provisioning-sandbox-app", _name("bulk-provisioning-sandbox-app"),
                     app_key.public_key(), app_key, ca=False)
        _write(app_path, cert.public_bytes(serialization.Encoding.PEM)
               + _pem_key(app_key, creds["certificate_password"]), private=True)
    der = cert.public_bytes(serialization.Encoding.DER)
    return KeyMaterial(
        ca_path=ca_path, server_cert_path=srv_path, server_key_path=srv_key_path, signing_key=signing,
        signing_kid=kid, app_cert_path=app_path, app_cert_password=creds["certificate_password"],
        app_public_key=cert.public_key(), app_thumbprint_sha1=hashlib.sha1(der).hexdigest().upper(),
        app_thumbprint_sha256=hashlib.sha256(der).hexdigest().upper(), client_secret=creds["client_secret"])
