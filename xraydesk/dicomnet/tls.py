"""TLS for DICOM associations (DICOM PS3.15 B.1, the "secure transport" profile).

Why optional but easy: inside a hospital network many PACS still speak plain DICOM, but
where the link crosses a shared network the images must not travel in the clear. One set
of PEM files in ``dicomnet.json`` (or ``--tls-cert/--tls-key/--tls-ca``) serves both
directions: the node presents ``cert`` to callers and checks theirs against ``ca``; as a
caller it checks the PACS against ``ca`` and presents ``cert`` when the PACS asks.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from xraydesk.dicomnet.config import ConfigError, TlsFiles
from xraydesk.files import FILE_NOT_FOUND, non_file_kind, path_problem

_ROLES = (  # where each file is given: an option, or dicomnet.json's "tls"
    ("cert", "certificate (--tls-cert, or tls.cert in dicomnet.json)"),
    ("key", "private key (--tls-key, or tls.key in dicomnet.json)"),
    ("ca", "CA certificate (--tls-ca, or tls.ca in dicomnet.json)"),
)


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    if tls.cert is None or tls.key is None:
        raise ConfigError("TLS for the node needs a certificate and its key (--tls-cert/--tls-key)")
    check_tls_files(tls)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.ca is not None:
            context.load_verify_locations(tls.ca)
            context.verify_mode = ssl.CERT_REQUIRED  # callers must prove who they are
    except (OSError, ssl.SSLError) as exc:
        raise _load_error(tls, exc) from exc
    return context


def client_context(tls: TlsFiles | None) -> ssl.SSLContext:
    """Verifies the PACS (against ``ca``, else the system's trust store)."""
    if tls is not None:
        check_tls_files(tls)
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca) if tls and tls.ca else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls is not None and tls.cert is not None and tls.key is not None:
            context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise _load_error(tls or TlsFiles(), exc) from exc
    return context


def check_tls_files(tls: TlsFiles) -> None:
    """``ConfigError`` naming the first TLS file that is missing, not a file or cannot be
    named, and why. Before OpenSSL reads them: its errors name no file ("No such file or
    directory" of which of three?) and a named pipe would block it for good."""
    for field, role in _ROLES:
        path: Path | None = getattr(tls, field)
        if path is None:
            continue
        problem = path_problem(path)
        if problem is None:
            kind = non_file_kind(path)
            problem = f"it is {kind}, not a PEM file" if kind else None
        if problem is None and not path.exists():
            problem = FILE_NOT_FOUND
        if problem is not None:
            raise ConfigError(f"TLS {role} {path}: {problem}")


def _load_error(tls: TlsFiles, exc: OSError | ssl.SSLError) -> ConfigError:
    """The files OpenSSL refused (no permission, not PEM, a key of another certificate),
    named: its own message names none."""
    given = (getattr(tls, field) for field, _ in _ROLES)
    files = ", ".join(dict.fromkeys(str(path) for path in given if path is not None))
    cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(f"cannot load the TLS files {files} ({cause})")
