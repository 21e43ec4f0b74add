"""The supervisor's side of the control socket, run inside its event loop.

Nothing here may block the loop: sockets are non-blocking, a request longer than
MAX_REQUEST_BYTES or not JSON gets an error and the connection is closed, and a peer that stops
reading is dropped once MAX_PENDING_REPLY bytes wait for it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procman.errors import ProcmanError
from procman.supervisor.control.protocol import (
    MAX_REQUEST_BYTES,
    ProtocolError,
    Request,
    encode,
    error_reply,
    parse_request,
)

MAX_PENDING_REPLY = 4 * 1024 * 1024
Handler = Callable[[Request, "Connection"], dict[str, Any] | None]


class Connection:
    def __init__(
        self, sock: socket.socket, selector: selectors.BaseSelector, server: ControlServer
    ) -> None:
        self.sock = sock
        self._selector = selector
        self._server = server
        self._inbox = b""
        self._outbox = bytearray()
        self.closed = False
        self.on_close: Callable[[Connection], None] | None = None
        self._close_after_reply = False
        selector.register(sock, selectors.EVENT_READ, self.on_ready)

    def on_ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and not self.closed:
            self._receive()

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        self._outbox += encode(message)
        if len(self._outbox) > MAX_PENDING_REPLY:
            self.close()  # the peer is not reading; don't hold its replies forever
            return
        self._flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._selector.unregister(self.sock)
        self.sock.close()
        self._server.forget(self)
        if self.on_close is not None:
            self.on_close(self)

    def _receive(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self._inbox += data
        while not self.closed:
            end = self._inbox.find(b"\n")
            if max(end, len(self._inbox) if end < 0 else 0) > MAX_REQUEST_BYTES:
                self._inbox = b""
                self._fail(ProtocolError(f"request longer than {MAX_REQUEST_BYTES} bytes"))
                return
            if end < 0:
                return
            line, self._inbox = self._inbox[:end], self._inbox[end + 1 :]
            self._answer(line)

    def _answer(self, line: bytes) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as error:
            self._fail(error)
            return
        try:
            reply = self._server.handler(request, self)
        except ProcmanError as error:
            reply = error_reply(error)
        if reply is not None:
            self.send(reply)

    def finish(self) -> None:
        """Close once everything sent so far has been delivered."""
        self._close_after_reply = True
        if not self._outbox:
            self.close()

    def _fail(self, error: ProcmanError) -> None:
        self.send(error_reply(error))
        self.finish()

    def _flush(self) -> None:
        while self._outbox and not self.closed:
            try:
                sent = self.sock.send(self._outbox)
            except BlockingIOError:
                break
            except OSError:
                self.close()
                return
            del self._outbox[:sent]
        if self.closed:
            return
        if self._close_after_reply and not self._outbox:
            self.close()
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._outbox else 0)
        self._selector.modify(self.sock, events, self.on_ready)


class ControlServer:
    def __init__(self, path: Path, selector: selectors.BaseSelector, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._selector = selector
        self._connections: set[Connection] = set()
        self._listener: socket.socket | None = None

    def open(self) -> None:
        """Bind the socket (replacing a stale one: the caller holds the app's lock), mode 0600."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        except OSError as error:
            listener.close()
            raise ProcmanError(
                f"cannot create the control socket {self.path}: {error.strerror}"
            ) from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        listener.listen(64)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, self._accept)
        self._listener = listener

    def close(self) -> None:
        for connection in list(self._connections):
            connection.close()
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def forget(self, connection: Connection) -> None:
        self._connections.discard(connection)

    def _accept(self, mask: int) -> None:
        assert self._listener is not None
        for _ in range(64):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # EMFILE and friends: the client sees a refused connection and retries
            sock.setblocking(False)
            connection = Connection(sock, self._selector, self)
            self._connections.add(connection)
            connection.on_ready(selectors.EVENT_READ)  # the request is usually there already
