"""TLS for DICOM associations (DICOM PS3.15 B.1, the "secure transport" profile).

Why optional but easy: inside a hospital network many PACS still speak plain DICOM, but
where the link crosses a shared network the images must not travel in the clear. One set
of PEM files in ``dicomnet.json`` (or ``--tls-cert/--tls-key/--tls-ca``) serves both
directions: the node presents ``cert`` to callers and checks theirs against ``ca``; as a
caller it checks the PACS against ``ca`` and presents ``cert`` when the PACS asks.
"""

from __future__ import annotations

import ssl

from xraydesk.dicomnet.config import ConfigError, TlsFiles


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    if tls.cert is None or tls.key is None:
        raise ConfigError("TLS for the node needs a certificate and its key (--tls-cert/--tls-key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.ca is not None:
            context.load_verify_locations(tls.ca)
            context.verify_mode = ssl.CERT_REQUIRED  # callers must prove who they are
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate files ({exc})") from exc
    return context


def client_context(tls: TlsFiles | None) -> ssl.SSLContext:
    """Verifies the PACS (against ``ca``, else the system's trust store)."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca) if tls and tls.ca else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls is not None and tls.cert is not None and tls.key is not None:
            context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate files ({exc})") from exc
    return context
