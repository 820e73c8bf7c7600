"""Where a webhook may point: public addresses only, unless configuration allows a private network.

The notifier runs inside the platform's network; a webhook URL is a request the notifier makes for whoever
configured the channel. Without this check a channel could reach the cloud metadata service (credentials),
the database or any internal admin API. The host is resolved and every address it resolves to is checked,
when the channel is saved and again before each send (DNS can change in between).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata endpoints (AWS IMDS, ECS task metadata, their IPv6 forms): refused even when a network
# holding them is allowed, because nothing legitimate is served there for a webhook.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23")
)


class TargetRefused(Exception):
    """The URL is not one the notifier may call; the message says why and what to set."""


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_address(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> None:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if address in METADATA or (mapped is not None and mapped in METADATA):
        raise TargetRefused(f"{address} is an instance metadata address; webhooks may never call it")
    if _public(address) or any(address in network for network in allowed):
        return
    raise TargetRefused(
        f"{address} is a private, loopback, link-local or reserved address; add its network to "
        "NOTIFIER_WEBHOOK_ALLOWED_NETWORKS (e.g. 10.0.0.0/8) if the receiver really lives there"
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"the host {host!r} does not resolve ({exc.strerror}); check the URL") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


# Apprise schemes that post to any host the URL names (its generic JSON / XML / form notifications): they are
# webhooks too. Vendor schemes (slack://, msteams://, ...) go to the vendor's own hosts and are not checked.
APPRISE_HTTP_SCHEMES = {
    "json": "http", "jsons": "https", "xml": "http", "xmls": "https", "form": "http", "forms": "https"
}


async def check_apprise_url(url: str, allowed: tuple[IPNetwork, ...]) -> None:
    """Apply the webhook rule to an Apprise URL of a generic HTTP scheme; other schemes pass."""
    parts = urlsplit(url)
    scheme = APPRISE_HTTP_SCHEMES.get(parts.scheme.lower())
    if scheme is not None:
        await check_webhook_url(parts._replace(scheme=scheme).geturl(), allowed)


async def check_webhook_url(url: str, allowed: tuple[IPNetwork, ...]) -> None:
    """Raise TargetRefused unless every address the URL's host resolves to may be called."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("a webhook target must be an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"the webhook URL's port is not a number: {exc}") from exc
    for address in await resolve(parts.hostname, port):
        check_address(address, allowed)
