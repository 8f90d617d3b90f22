"""A TCP proxy that resets the first connections it accepts: a dropped connection, as a client sees it."""

from __future__ import annotations

import socket
import struct
import threading


class ResettingProxy:
    """A TCP proxy to `upstream` that resets the first `resets` connections after reading their request."""

    def __init__(self, upstream_url: str, resets: int) -> None:
        self.upstream = ("127.0.0.1", int(upstream_url.rsplit(":", 1)[1].split("/")[0]))
        self.resets_left = resets
        self.connections = 0
        self.open: list[socket.socket] = []  # piped sockets, closed with the proxy
        self.server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            if self.resets_left > 0:
                self.resets_left -= 1
                client.recv(65536)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # SO_LINGER 0: the peer reads "connection reset by peer"
                continue
            upstream = socket.create_connection(self.upstream)
            self.open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self.server.close()
        for sock in self.open:  # a client's pooled keep-alive connection must not hold the upstream open
            sock.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            sock.close()
