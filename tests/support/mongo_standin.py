"""Run mongoeco's wire-protocol server (a MongoDB stand-in) on 127.0.0.1 for contract tests.

Needs Python >= 3.13 with `mongoeco` installed (the Makefile makes `.venv-mongo`). Prints the
connection URI on its first line, then serves until killed.
"""

import asyncio
import sys


async def main() -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    server = AsyncMongoEcoProxyServer(host="127.0.0.1", port=0)
    address = await server.start()
    print(address.uri, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
