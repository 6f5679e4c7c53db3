"""The guard on where glance-api may fetch external sources from.

A client that registers an image by location, or asks for a copy-from, makes glance-api
open a connection to a URL of the client's choice. Without a check, that reaches what
only the api's network can reach: the cloud's metadata service (169.254.169.254), the
registry, databases, admin interfaces on loopback (Glance had no check: CVE-2017-7200).

`AddressGuard.resolve` resolves a host once and refuses it if any address it resolves to
is denied ([DEFAULT] external_source_denied_networks, unless
external_source_allowed_networks lists it). The http store then connects to those
checked addresses themselves, not to the name again, so a name that resolves to another
address the second time (DNS rebinding) gains nothing; every redirect goes through the
same check, as it is a new connection.
"""

import ipaddress
import socket
from collections.abc import Iterable

from glance_lite import exceptions

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeniedAddress(exceptions.Invalid):
    def __init__(self, host: str, address: Address):
        super().__init__(
            f"External source host {host} resolves to {address}, an address external "
            "sources may not be fetched from (external_source_denied_networks)"
        )


class UnresolvableHost(exceptions.Invalid):
    def __init__(self, host: str, detail: str):
        super().__init__(f"External source host {host} cannot be resolved: {detail}")


def parse_networks(values: Iterable[str], option: str) -> tuple[Network, ...]:
    """CIDRs as networks; ConfigError naming `option` for one that is not a network."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as err:
            raise exceptions.ConfigError(f"[DEFAULT] {option}: {err}") from None
    return tuple(networks)


class AddressGuard:
    def __init__(self, denied: Iterable[Network], allowed: Iterable[Network]):
        self.denied = tuple(denied)
        self.allowed = tuple(allowed)

    def allows(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return True
        return not any(address in network for network in self.denied)

    def resolve(self, host: str, port: int) -> list[tuple]:
        """The getaddrinfo() entries of `host` (TCP), every one of them allowed.

        DeniedAddress if any is denied (a name with one good and one bad address is
        refused: which one a connection would use is not ours to choose);
        UnresolvableHost if the name does not resolve.
        """
        host = host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as err:
            raise UnresolvableHost(host, str(err)) from None
        for info in infos:
            # a scoped IPv6 address (fe80::1%eth0) is checked without its zone
            address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            if not self.allows(address):
                raise DeniedAddress(host, address)
        return infos


def guard_from_conf(conf) -> AddressGuard:
    """The guard of [DEFAULT] external_source_denied_networks / _allowed_networks."""
    return AddressGuard(
        parse_networks(conf.external_source_denied_networks, "external_source_denied_networks"),
        parse_networks(conf.external_source_allowed_networks, "external_source_allowed_networks"),
    )
