"""Where a webhook may go: refuse addresses inside the platform's network (SSRF).

A URL's host is resolved and every address it resolves to is checked: private, loopback,
link-local, carrier-grade NAT, multicast, unspecified, reserved and cloud metadata addresses are
refused, IPv4-mapped IPv6 addresses by the IPv4 address they carry. Networks in
`webhook_allowed_networks` are allowed anyway (loopback for the local stack and tests). The
checked address is the one to connect to, so no second DNS answer can slip in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
CGNAT = ipaddress.ip_network("100.64.0.0/10")


class UrlRefused(Exception):
    """A URL a webhook may not be sent to; `rule` names the rule that refused it."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """A checked URL: its scheme, host (for Host and SNI), port and the address to connect to."""

    scheme: str
    host: str
    port: int
    address: str
    path: str

    def connect_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def address_rule(address: IPAddress) -> str | None:
    """The rule that refuses `address`, None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_rule(address.ipv4_mapped)
    if address in METADATA:
        return "metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "carrier_grade_nat"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    return None


def parse_networks(values: list[str]) -> list[Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def _allowed(address: IPAddress, allowed: list[Network]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(a in net for a in candidates for net in allowed if a.version == net.version)


def split_url(url: str, *, require_https: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a URL a webhook may use, or UrlRefused."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UrlRefused("url", f"{url!r} is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("scheme", f"the URL must start with http:// or https://, not {url!r}")
    if require_https and scheme != "https":
        raise UrlRefused("https_required", "this platform only sends webhooks to https:// URLs")
    if parts.username or parts.password:
        raise UrlRefused("credentials", "the URL must not carry a user name or password")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
        host = parts.hostname
    except ValueError:
        raise UrlRefused("port", "the URL's port is not a number from 1 to 65535") from None
    if not host:
        raise UrlRefused("host", "the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise UrlRefused("unresolvable", f"the host {host!r} does not resolve") from None
    seen: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


async def check_url(url: str, *, allowed: list[Network], require_https: bool) -> Target:
    """The target to connect to for `url`; UrlRefused naming the rule otherwise.

    Every address the host resolves to must pass (a name with one private answer among public
    ones is refused: the next resolution could pick it).
    """
    scheme, host, port, path = split_url(url, require_https=require_https)
    addresses = await resolve(host, port)
    if not addresses:
        raise UrlRefused("unresolvable", f"the host {host!r} does not resolve")
    for address in addresses:
        rule = address_rule(address)
        if rule is not None and not _allowed(address, allowed):
            via = "" if str(address) == host.strip("[]") else f" ({host} resolves to {address})"
            raise UrlRefused(
                rule,
                f"webhooks may not be sent to {rule.replace('_', '-')} addresses: "
                f"{address}{via}; use a public address",
            )
    return Target(scheme, host, port, str(addresses[0]), path)
