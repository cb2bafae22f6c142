"""aiohttp serves and fetches on loopback; cryptography signs with Ed25519 and verifies.
The key is fixed, so the signature is too (Ed25519 is deterministic)."""

import asyncio

import aiohttp
import cryptography
from aiohttp import http_parser, web
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
MESSAGE = b"binpack corpus"


async def sign(request: web.Request) -> web.Response:
    return web.Response(body=KEY.sign(await request.read()))


async def main() -> None:
    app = web.Application()
    app.router.add_post("/sign", sign)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/sign", data=MESSAGE) as r:
            status, signature = r.status, await r.read()
    await runner.cleanup()
    KEY.public_key().verify(signature, MESSAGE)  # raises InvalidSignature
    print(f"aiohttp {aiohttp.__version__} answered {status}, parser {http_parser.HttpResponseParser.__module__}")
    print(f"cryptography {cryptography.__version__} ({backend.openssl_version_text()})")
    print(f"ed25519 signature verified: {signature.hex()[:32]}")


asyncio.run(main())
