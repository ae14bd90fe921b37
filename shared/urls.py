"""URL rules of SPEC §5: the project never fetches user URLs, but it refuses
the ones that point inside a network, whatever their spelling.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")
BLOCKED_HOSTS = ("localhost", "metadata.google.internal", "metadata")
BLOCKED_SUFFIXES = (".localhost", ".internal", ".local")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)\Z")


class UrlRejected(ValueError):
    """The URL breaks a rule; the message says which, for the user."""


def check_url(url: str, *, max_chars: int) -> str:
    """Return ``url`` unchanged when it is acceptable, else raise ``UrlRejected``."""
    if len(url) > max_chars:
        raise UrlRejected(f"must be at most {max_chars} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise UrlRejected("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise UrlRejected("is not a valid URL") from exc
    del port
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UrlRejected("must use http or https")
    if "@" in parts.netloc or parts.username is not None:
        raise UrlRejected("must not contain user information")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejected("must name a host")
    _check_host(host)
    return url


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_webhook_url(url: str, *, max_chars: int, allow_loopback: bool) -> str:
    """A task's webhook_url: https to a public host; with ``allow_loopback`` (the local
    stack's WEBHOOK_ALLOW_LOOPBACK) also http(s) to this machine's loopback."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError as exc:
        raise UrlRejected("is not a valid URL") from exc
    if allow_loopback and host in LOOPBACK_HOSTS and parts.scheme.lower() in ALLOWED_SCHEMES:
        if len(url) > max_chars or "@" in parts.netloc:
            raise UrlRejected(f"must be at most {max_chars} characters, with no user information")
        return url
    if parts.scheme.lower() != "https":
        raise UrlRejected("must use https")
    return check_url(url, max_chars=max_chars)


def is_public_address(address: str, *, allow_loopback: bool = False) -> bool:
    """Whether a resolved address may be called (the delivery's check, after DNS)."""
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if allow_loopback and parsed.is_loopback:
        return True
    return _is_public(parsed)


def _check_host(host: str) -> None:
    if ":" in host:
        ascii_host = host
    else:
        # Normalise first: fetchers map fullwidth digits and dots ("１２７。０。０。１")
        # to ASCII before they read a host as an IPv4 address.
        try:
            ascii_host = host.encode("idna").decode("ascii").lower().rstrip(".")
        except UnicodeError as exc:
            raise UrlRejected("has an invalid host name") from exc
    address = _parse_ip_literal(ascii_host)
    if address is not None:
        if not _is_public(address):
            raise UrlRejected("must not point to a private, loopback or reserved address")
        return
    if ascii_host in BLOCKED_HOSTS or ascii_host.endswith(BLOCKED_SUFFIXES):
        raise UrlRejected("must not point to an internal host")
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise UrlRejected("must name a public DNS host")


def _parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a browser would read in ``host``, or None for a DNS name.

    Follows the WHATWG URL rule: a host whose last label is numeric is an IPv4
    address, in decimal, octal (leading 0) or hex (0x), with 1 to 4 parts.
    """
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%")[0])
        except ValueError as exc:
            raise UrlRejected("has an invalid IPv6 address") from exc
    parts = host.lower().split(".")
    if not _NUMERIC_PART.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        raise UrlRejected("has an invalid IPv4 address")
    numbers = [_parse_ipv4_number(p) for p in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise UrlRejected("has an invalid IPv4 address")
    value = last
    for index, number in enumerate(leading):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        try:
            return int(part, 8)
        except ValueError as exc:
            raise UrlRejected("has an invalid IPv4 address") from exc
    return int(part)


GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _nat64(address)
        if embedded is not None:
            return _is_public(embedded)
        # Outside global unicast lie the reserved forms (IPv4-compatible ::a.b.c.d,
        # local-use NAT64 64:ff9b:1::/48) that Python's is_global lets through.
        if address not in GLOBAL_UNICAST_V6:
            return False
    return address.is_global and not address.is_multicast


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
