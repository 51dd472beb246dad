"""A loopback HTTPS reverse proxy with a throwaway self-signed certificate, for clients that insist on HTTPS
(Microsoft's Dataverse SDK refuses an http:// base URL). It forwards every request to a local HTTP server with
`X-Forwarded-Proto: https` and the original Host, so the server's absolute URLs (@odata.nextLink,
OData-EntityId) point back at the proxy."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}
UPSTREAM_KEY = web.AppKey("upstream", str)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, valid for a day; the certificate is its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tillbridge-local-tls")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls-cert.pem", folder / "tls-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


async def _forward(request: web.Request) -> web.StreamResponse:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers["X-Forwarded-Proto"] = "https"
    headers["X-Forwarded-Host"] = request.host
    url = URL(request.app[UPSTREAM_KEY] + request.rel_url.raw_path_qs, encoded=True)  # bytes as the client sent them
    async with request.app[SESSION_KEY].request(
        request.method, url, headers=headers, data=await request.read(), allow_redirects=False
    ) as upstream:
        body = await upstream.read()
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return web.Response(status=upstream.status, body=body, headers=out)


def create_proxy(upstream: str) -> web.Application:
    """An app that forwards everything to `upstream` (http://127.0.0.1:PORT); serve it with server_context()."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[UPSTREAM_KEY] = upstream.rstrip("/")

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION_KEY] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await app[SESSION_KEY].close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", _forward)
    return app
