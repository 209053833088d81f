"""A TCP proxy in front of the broker that can make it unreachable.

Tansu advertises the proxy's port, so every client (services and test clients alike) talks
to the broker through it. `cut()` resets every open connection and closes the listening
socket, so new connections are refused: to a client the broker is gone, as when its host
drops off the network. `restore()` listens again on the same port.

With `tls`, the proxy is the broker's TLS listener (it decrypts and forwards), so clients
must speak TLS to it, and present a certificate if the context asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading


class TcpProxy:
    def __init__(
        self,
        listen_port: int,
        target_port: int,
        host: str = "127.0.0.1",
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.host = host
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Reset every connection and refuse new ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._cut())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.listen_port, reuse_address=True, ssl=self._tls
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._connections):
            _reset(writer)
        self._connections.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            _reset(client_writer)
            return
        pair = {client_writer, target_writer}
        self._connections |= pair
        try:
            await asyncio.gather(
                _pump(client_reader, target_writer),
                _pump(target_reader, client_writer),
            )
        finally:
            for writer in pair:
                self._connections.discard(writer)
                _reset(writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a dropped link looks to the other end."""
    if writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
