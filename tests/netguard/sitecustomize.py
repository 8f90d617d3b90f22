"""Network guard: reaching a non-loopback host fails with "network guard: test tried to reach HOST".

Put this folder on a subprocess's PYTHONPATH and Python imports it at startup as `sitecustomize`, which
installs the guard for the whole process. `tests/conftest.py` imports it as a module and installs the same
guard in the test process through `monkeypatch`. Blocked attempts are also written to stderr and kept in
`VIOLATIONS`, so that a caller which swallows the exception still cannot hide them.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
VIOLATIONS: list[str] = []  # "host:port" of every blocked attempt, in order
REAL_SOCKET_CALLS: dict[str, Callable[..., Any]] = {  # the unguarded originals, called for loopback hosts
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "sendto": socket.socket.sendto,
    "getaddrinfo": socket.getaddrinfo,
    "create_connection": socket.create_connection,
    "gethostbyname": socket.gethostbyname,
    "gethostbyname_ex": socket.gethostbyname_ex,
}
_INTERNET_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class NetworkGuardError(RuntimeError):
    """A test tried to reach a host outside this machine's loopback interface."""


def is_loopback_host(host: object) -> bool:
    """True for loopback names and addresses (127.0.0.0/8, ::1, localhost) and the unspecified address."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    name = str(host).strip("[]").split("%")[0].rstrip(".").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost") or name == "":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return address.is_loopback or address.is_unspecified


def check_host(host: object, port: object = None) -> None:
    """Raise NetworkGuardError (and record it) unless `host` is on the loopback interface."""
    if is_loopback_host(host):
        return
    target = f"{host}:{port}" if port is not None else str(host)
    VIOLATIONS.append(target)
    message = f"network guard: test tried to reach {target}"
    print(message, file=sys.stderr, flush=True)
    raise NetworkGuardError(message)


def _check_socket_address(sock: socket.socket, address: Any) -> None:
    if sock.family in _INTERNET_FAMILIES and isinstance(address, tuple):
        check_host(address[0], address[1] if len(address) > 1 else None)


def guarded_connect(sock: socket.socket, address: Any) -> None:
    _check_socket_address(sock, address)
    return REAL_SOCKET_CALLS["connect"](sock, address)


def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
    _check_socket_address(sock, address)
    return REAL_SOCKET_CALLS["connect_ex"](sock, address)


def guarded_sendto(sock: socket.socket, data: bytes, *flags_and_address: Any) -> int:
    _check_socket_address(sock, flags_and_address[-1])
    return REAL_SOCKET_CALLS["sendto"](sock, data, *flags_and_address)


def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    check_host(host, port)
    return REAL_SOCKET_CALLS["getaddrinfo"](host, port, *args, **kwargs)


def guarded_create_connection(address: tuple[Any, ...], *args: Any, **kwargs: Any) -> socket.socket:
    check_host(address[0], address[1])
    return REAL_SOCKET_CALLS["create_connection"](address, *args, **kwargs)


def guarded_gethostbyname(host: str) -> str:
    check_host(host)
    return REAL_SOCKET_CALLS["gethostbyname"](host)


def guarded_gethostbyname_ex(host: str) -> Any:
    check_host(host)
    return REAL_SOCKET_CALLS["gethostbyname_ex"](host)


def install(set_attribute: Callable[[Any, str, Any], None] = setattr) -> None:
    """Replace the socket entry points with guarded ones (pass `monkeypatch.setattr` to make it undoable)."""
    for name in ("connect", "connect_ex", "sendto"):
        set_attribute(socket.socket, name, globals()[f"guarded_{name}"])
    for name in ("getaddrinfo", "create_connection", "gethostbyname", "gethostbyname_ex"):
        set_attribute(socket, name, globals()[f"guarded_{name}"])


if __name__ == "sitecustomize":
    install()
