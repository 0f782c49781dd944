"""An attached client: the container's output into its fds, its stdin into the container.

The log pump hands every chunk of output to ``Attachment.sink``, which only
queues it: a client that reads slowly (a terminal, a full pipe) then slows
its own writer thread, never the pump that serves every container. Stdin
is copied by a second thread until end of file, or until the attachment is
closed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.backends.runtime import LogStream

_END = None


class Attachment:
    def __init__(self, stdout: int, stderr: int) -> None:
        self.stdout = stdout
        self.stderr = stderr if stderr >= 0 else stdout
        self._queue: queue.SimpleQueue[tuple[LogStream, bytes] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="attach-out", daemon=True)
        self._writer.start()
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._reader: threading.Thread | None = None

    def sink(self, stream: LogStream, data: bytes) -> None:
        self._queue.put((stream, data))

    def forward_stdin(self, source: int, target: int, on_eof: Callable[[], None]) -> None:
        """Copy ``source`` into a duplicate of ``target``; ``on_eof`` at the end of ``source``."""
        dup = os.dup(target)
        self._reader = threading.Thread(
            target=self._read, args=(source, dup, on_eof), name="attach-in", daemon=True
        )
        self._reader.start()

    def close(self) -> None:
        """Flush the queued output, then stop both threads."""
        self._queue.put(_END)
        self._writer.join(10)
        os.write(self._stop_w, b"x")
        if self._reader is not None:
            self._reader.join(5)
        os.close(self._stop_r)
        os.close(self._stop_w)

    def _write(self, *_: object) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            stream, data = item
            fd = self.stderr if stream == "stderr" else self.stdout
            if fd < 0:
                continue
            with contextlib.suppress(OSError):
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]

    def _read(self, source: int, target: int, on_eof: Callable[[], None]) -> None:
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(source, selectors.EVENT_READ)
                sel.register(self._stop_r, selectors.EVENT_READ)
                while True:
                    keys = [k.fd for k, _ in sel.select()]
                    if self._stop_r in keys:
                        return
                    try:
                        data = os.read(source, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        on_eof()
                        return
                    try:
                        view = memoryview(data)
                        while view:
                            view = view[os.write(target, view) :]
                    except OSError:
                        return
        finally:
            os.close(target)
