"""Networking of the native backend: bridges, IPAM, firewall rules, DNS and port proxies.

``NetworkManager`` (manager.py) is the entry point for networks and
endpoints; the supervisor runs one ``DnsResponder`` per network
(``NetworkManager.dns_responder``) and a ``PortProxies`` (ports.py) for
published ports. Links are made with rtnetlink messages of our own
(``rtnl.py``); dnslib is imported only when a responder starts.
"""

from composer.backends.native.network.etc_files import hosts_file, resolv_conf
from composer.backends.native.network.manager import NetworkManager
from composer.backends.native.network.records import Endpoint, NetworkRecord

__all__ = ["Endpoint", "NetworkManager", "NetworkRecord", "hosts_file", "resolv_conf"]
