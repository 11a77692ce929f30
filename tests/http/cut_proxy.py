"""A loopback TCP proxy in front of a real server that can break its connections mid-answer.

Once armed with a limit, each connection forwards at most that many more bytes from the
server and is then closed, both ways: a store connection that breaks in the middle of a
response, for real, at a point the test chooses (socket buffers cannot hide it).
"""

from __future__ import annotations

import contextlib
import socket
import threading

BUFFER = 64 << 10


class CutProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.limit: int | None = None  # set by arm()
        self.cuts = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def arm(self, limit: int) -> None:
        """From now on, each connection forwards at most `limit` more bytes of answers."""
        self.limit = limit

    def close(self) -> None:
        """Break every connection and stop listening: the port is closed (refused). The
        shutdown first: a close alone leaves the thread blocked in accept() listening."""
        _shut(self.listener)
        with self._lock:
            for s in self._sockets:
                _shut(s)
            self._sockets.clear()

    def reopen(self) -> None:
        """Listen on the same port again, passing everything (a store come back)."""
        self.limit = None
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _shut(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        passed = 0  # answer bytes forwarded since the proxy was armed
        try:
            while data := src.recv(BUFFER):
                if answers and self.limit is not None:
                    room = self.limit - passed
                    if len(data) >= room:
                        dst.sendall(data[:room])
                        with self._lock:
                            self.cuts += 1
                        break
                    passed += len(data)
                dst.sendall(data)
        except OSError:
            pass
        _shut(src)
        _shut(dst)


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
