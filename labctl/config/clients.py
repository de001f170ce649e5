"""Export-rule clients as real types: IP addresses, networks (CIDR or netmask) and host names.

    parse_client("10.0.0.0/255.255.255.0")          # → IPv4Network('10.0.0.0/24')
    covers_everything([...])                        # True when the union is all of IPv4 or all of IPv6

Anything else (`*`, whitespace, shell metacharacters, `0/0`) is refused with a ValueError saying why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Client = Network | str

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
DOMAIN = re.compile(rf"\.{_LABEL}(?:\.{_LABEL})+")  # ONTAP's `.example.com`: every host of the domain
NETGROUP = re.compile(r"@[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_EVERYTHING = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
_V4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def parse_client(text: object) -> Client:
    """One client match: an address or network (as a network), or a host/domain/netgroup name (as str).

    Raises:
        ValueError: not one of those forms (the message says which forms are accepted).
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a client address, network or host name")
    if text != text.strip() or not text:
        raise ValueError(f"{text!r} has surrounding whitespace or is empty; write the address alone")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    name = text.rstrip(".")
    is_name = HOSTNAME.fullmatch(text) and len(name) <= 253 and not name.rsplit(".", 1)[-1].isdigit()
    if is_name or DOMAIN.fullmatch(text) or NETGROUP.fullmatch(text):
        return text
    raise ValueError(
        f"{text!r} is not an IP address, a network (10.0.0.0/24 or 10.0.0.0/255.255.255.0), "
        "a host name, a .domain or an @netgroup"
    )


def client_text(client: Client) -> str:
    """The form sent to ONTAP: an address alone, a network in CIDR form, a name as written."""
    if isinstance(client, str):
        return client
    if client.num_addresses == 1 and client.prefixlen:
        return str(client.network_address)
    return str(client)


def _as_v4(net: ipaddress.IPv6Network) -> ipaddress.IPv4Network | None:
    if not net.subnet_of(_V4_MAPPED):
        return None
    mapped = net.network_address.ipv4_mapped
    assert mapped is not None
    return ipaddress.IPv4Network((mapped, net.prefixlen - 96))


def covers_everything(clients: Iterable[Client]) -> bool:
    """True when the networks among `clients` together match every IPv4 or every IPv6 address (an
    unspecified address, 0.0.0.0 or ::, counts as everything, as it does for NFS servers)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for client in clients:
        if isinstance(client, str):
            continue
        if client.network_address.is_unspecified and client.num_addresses == 1:
            return True
        if isinstance(client, ipaddress.IPv4Network):
            v4.append(client)
        else:
            mapped = _as_v4(client)
            if mapped is not None:
                v4.append(mapped)
            else:
                v6.append(client)
    merged = [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]
    return any(net in _EVERYTHING for net in merged)
