"""A real ``redis-server`` for the tests, on a free port, in a temporary folder.

Without the program the Redis tests skip, except in CI (``FLASHVIZ_REQUIRE_REDIS=1``, set
by ``.ci/run``, which installs Debian's ``redis-server``), where its absence fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_redis_server() -> str:
    """The path of ``redis-server``; skips the test (fails it in CI) without one."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("FLASHVIZ_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A fresh Redis (no persistence) for the block: yields its ``redis://`` URL."""
    program = need_redis_server()
    port = _free_port()
    server = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)
