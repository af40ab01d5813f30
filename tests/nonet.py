"""Run ``chatlens`` with every socket connection outside the loopback refused and reported.

``python tests/nonet.py ARGS...`` runs ``chatlens ARGS...``; a connection attempt to any other
address raises ``OSError`` and makes the exit status 3 even if the caller swallowed the error.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

attempts: list[str] = []


def _loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard(original: Any) -> Any:
    def guarded(self: socket.socket, address: Any, *args: Any) -> Any:
        if not _loopback(address):
            attempts.append(repr(address))
            raise OSError(f"network access blocked in tests: {address!r}")
        return original(self, address, *args)
    return guarded


def install() -> None:
    socket.socket.connect = _guard(socket.socket.connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = _guard(socket.socket.connect_ex)  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from chatlens.cli import main

    sys.argv = ["chatlens", *sys.argv[1:]]
    try:
        main()
    finally:
        if attempts:
            print(f"blocked network calls: {attempts}", file=sys.stderr)
            sys.exit(3)
