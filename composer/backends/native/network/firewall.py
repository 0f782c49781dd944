"""Firewall rules of composer networks: egress NAT, isolation, internal networks.

One nftables table, ``inet composer``, holds everything (iptables chains
``COMPOSER-FORWARD`` and ``COMPOSER-POSTROUTING`` where ``nft`` is missing).
Every rule carries the comment ``composer:<network id>``, so ``remove``
deletes exactly the rules of one network and nothing else:

* NAT: ``ip saddr <subnet> oifname != <bridge> masquerade`` — not for
  ``internal`` networks;
* isolation: the bridge's name goes into the set ``@bridges``, and traffic
  from it to any *other* composer bridge is dropped;
* internal: whatever leaves or enters the bridge through another interface
  is dropped (the container also gets no default route).

A packet survives only if every base chain on its hook accepts it. Docker
sets its iptables ``FORWARD`` policy to DROP, which would also drop the
bridged and forwarded traffic of composer networks; where that chain exists,
accept rules for the bridge are inserted into it as well (same comment).
Our own drops still win, since a drop in any chain is final.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from composer.errors import BackendError, Unavailable

TABLE = "composer"
FAMILY = "inet"


def tag(network_id: str) -> str:
    return f"composer:{network_id[:12]}"


@dataclass(frozen=True, slots=True)
class NetworkRules:
    """What the firewall needs to know about one network."""

    id: str
    bridge: str
    subnet: str | None
    subnet6: str | None
    internal: bool
    masquerade: bool = True
    """False with driver_opts ``com.docker.network.bridge.enable_ip_masquerade: "false"``."""


def _run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    try:
        res = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise Unavailable(f"{argv[0]} is not installed", "install nftables or iptables") from exc
    if check and res.returncode != 0:
        raise BackendError(f"{' '.join(argv[:3])} failed: {res.stderr.strip()}")
    return res.stdout


def enable_forwarding(ipv6: bool) -> None:
    """``net.ipv4.ip_forward=1`` so that networks can route; IPv6 forwarding only when needed.

    (Turning IPv6 forwarding on makes the host ignore router advertisements,
    so it is left alone for IPv4-only networks.)
    """
    paths = ["/proc/sys/net/ipv4/ip_forward"]
    if ipv6:
        paths.append("/proc/sys/net/ipv6/conf/all/forwarding")
    for path in paths:
        try:
            with open(path) as f:
                if f.read().strip() == "1":
                    continue
            with open(path, "w") as f:
                f.write("1")
        except OSError as exc:
            raise BackendError(f"cannot enable forwarding ({path}): {exc}") from exc


class Firewall:
    """Adds and removes one network's rules; ``backend`` is ``nft`` or ``iptables``."""

    def __init__(self, backend: str | None = None) -> None:
        if backend is None:
            backend = "nft" if shutil.which("nft") else "iptables"
        self.backend = backend

    def add(self, net: NetworkRules, *, fresh: bool = False) -> None:
        """Install the network's rules; unless ``fresh`` (a new id), old ones are dropped first.

        With nft, our table and the accept rules in Docker's ``FORWARD`` chain are
        written side by side (two tools, each one process or two).
        """
        enable_forwarding(net.subnet6 is not None)
        if not fresh:
            self.remove(net.id)  # idempotent: a retried create never doubles rules
        if self.backend == "nft":
            side_by_side(
                lambda: _run(["nft", "-f", "-"], stdin=self._nft_script(net)),
                lambda: self._docker_compat(net, add=True),
            )
        else:
            self._ipt_add(net)  # its chain comes first in FORWARD and accepts on its own

    def remove(self, network_id: str) -> None:
        if self.backend == "nft":
            side_by_side(
                lambda: self._nft_remove(network_id),
                lambda: self._docker_compat(None, add=False, network_id=network_id),
            )
        else:
            self._ipt_remove(network_id)

    def rules(self, network_id: str) -> list[str]:
        """The rules tagged for this network, as text (for inspection and tests)."""
        t = tag(network_id)
        out = []
        if self.backend == "nft":
            listing = _run(["nft", "list", "table", FAMILY, TABLE], check=False)
            out = [line.strip() for line in listing.splitlines() if f'"{t}"' in line]
        else:
            for table in ("filter", "nat"):
                for ipt in ("iptables", "ip6tables"):
                    listing = _run([ipt, "-t", table, "-S"], check=False)
                    out += [line for line in listing.splitlines() if t in line]
            return out
        return out + self._compat_rules(t)

    # --- nftables ---------------------------------------------------------

    def _nft_script(self, n: NetworkRules) -> str:
        c = f'comment "{tag(n.id)}"'
        b = f'"{n.bridge}"'
        lines = [
            f"add table {FAMILY} {TABLE}",
            f"add set {FAMILY} {TABLE} bridges {{ type ifname; }}",
            f"add chain {FAMILY} {TABLE} forward "
            "{ type filter hook forward priority filter; policy accept; }",
            f"add chain {FAMILY} {TABLE} postrouting "
            "{ type nat hook postrouting priority srcnat; policy accept; }",
            f"add element {FAMILY} {TABLE} bridges {{ {b} }}",
            f"add rule {FAMILY} {TABLE} forward iifname {b} oifname != {b} "
            f"oifname @bridges drop {c}",
        ]
        if n.internal:
            lines.append(f"add rule {FAMILY} {TABLE} forward iifname {b} oifname != {b} drop {c}")
            lines.append(f"add rule {FAMILY} {TABLE} forward oifname {b} iifname != {b} drop {c}")
        elif n.masquerade:
            for fam, subnet in (("ip", n.subnet), ("ip6", n.subnet6)):
                if subnet:
                    lines.append(
                        f"add rule {FAMILY} {TABLE} postrouting {fam} saddr {subnet} "
                        f"oifname != {b} masquerade {c}"
                    )
        return "\n".join(lines) + "\n"

    def _nft_remove(self, network_id: str) -> None:
        t = tag(network_id)
        raw = _run(["nft", "-j", "-a", "list", "table", FAMILY, TABLE], check=False)
        if not raw.strip():
            return
        cmds = []
        bridges: set[str] = set()
        members: set[str] = set()
        for item in json.loads(raw).get("nftables", []):
            nft_set = item.get("set")
            if nft_set and nft_set.get("name") == "bridges":
                members = {str(e) for e in nft_set.get("elem") or () if isinstance(e, str)}
            rule = item.get("rule")
            if not rule or rule.get("comment") != t:
                continue
            cmds.append(f"delete rule {FAMILY} {TABLE} {rule['chain']} handle {rule['handle']}")
            for expr in rule.get("expr", []):
                match = expr.get("match") or {}
                left = match.get("left") or {}
                if (left.get("meta") or {}).get("key") == "iifname" and match.get("op") == "==":
                    bridges.add(str(match.get("right")))
        # only elements the listing showed: a batch is atomic, and deleting a missing
        # element would fail it and keep the rules
        for bridge in sorted(bridges & members):
            cmds.append(f'delete element {FAMILY} {TABLE} bridges {{ "{bridge}" }}')
        if cmds:
            _run(["nft", "-f", "-"], stdin="\n".join(cmds) + "\n")

    # --- iptables fallback --------------------------------------------------

    def _ipt_add(self, n: NetworkRules) -> None:
        """The same policy in iptables chains (one ``iptables-restore`` per family).

        Drops are inserted at the top of ``COMPOSER-FORWARD`` (above every
        network's accepts), with this bridge's own traffic accepted above
        them; accepts for egress and replies are appended. Isolation matches
        other bridges by the ``cmp-`` prefix, since iptables has no sets of
        interface names.
        """
        c = f"-m comment --comment {tag(n.id)}"
        b = n.bridge
        for ipt, subnet in (("iptables", n.subnet), ("ip6tables", n.subnet6)):
            if subnet is None and ipt == "ip6tables":
                continue
            _ensure_chain(ipt, "filter", "COMPOSER-FORWARD", "FORWARD")
            _ensure_chain(ipt, "nat", "COMPOSER-POSTROUTING", "POSTROUTING")
            top = [f"-i {b} -o cmp-+ {c} -j DROP", f"-o {b} -i cmp-+ {c} -j DROP"]
            if n.internal:
                top += [f"-i {b} {c} -j DROP", f"-o {b} {c} -j DROP"]
            top.append(f"-i {b} -o {b} {c} -j ACCEPT")  # inserted last: ends up first
            lines = ["*filter", *(f"-I COMPOSER-FORWARD {r}" for r in top)]
            if not n.internal:
                lines += [
                    f"-A COMPOSER-FORWARD -i {b} {c} -j ACCEPT",
                    f"-A COMPOSER-FORWARD -o {b} -m conntrack --ctstate RELATED,ESTABLISHED"
                    f" {c} -j ACCEPT",
                ]
            if not n.internal and n.masquerade:
                lines += [
                    "COMMIT",
                    "*nat",
                    f"-A COMPOSER-POSTROUTING -s {subnet} ! -o {b} {c} -j MASQUERADE",
                ]
            lines.append("COMMIT")
            _run([f"{ipt}-restore", "--noflush"], stdin="\n".join(lines) + "\n")

    def _ipt_remove(self, network_id: str) -> None:
        for ipt in ("iptables", "ip6tables"):
            for table, chain in (("filter", "COMPOSER-FORWARD"), ("nat", "COMPOSER-POSTROUTING")):
                _delete_tagged(ipt, table, chain, tag(network_id))

    # --- coexistence with Docker's FORWARD DROP policy ------------------------

    def _docker_compat(self, n: NetworkRules | None, *, add: bool, network_id: str = "") -> None:
        if not shutil.which("iptables"):
            return
        for ipt in ("iptables", "ip6tables"):
            if not add:  # one listing: a missing chain lists nothing
                _delete_tagged(ipt, "filter", "FORWARD", tag(network_id))
                continue
            assert n is not None
            if ipt == "ip6tables" and not n.subnet6:
                continue
            if not _chain_exists(ipt, "filter", "FORWARD"):
                continue
            c = f"-m comment --comment {tag(n.id)}"
            script = (
                "*filter\n"
                f"-I FORWARD -i {n.bridge} {c} -j ACCEPT\n"
                f"-I FORWARD -o {n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED"
                f" {c} -j ACCEPT\n"
                "COMMIT\n"
            )
            _run([f"{ipt}-restore", "--noflush"], stdin=script)

    def _compat_rules(self, t: str) -> list[str]:
        if not shutil.which("iptables"):
            return []
        out = []
        for ipt in ("iptables", "ip6tables"):
            listing = _run([ipt, "-t", "filter", "-S", "FORWARD"], check=False)
            out += [line for line in listing.splitlines() if t in line]
        return out


def side_by_side(*steps: Callable[[], object]) -> None:
    """Run ``steps`` at once (each on a thread but the last); the first failure is raised
    once all have ended."""
    errors: list[BaseException] = []

    def guarded(step: Callable[[], object]) -> None:
        try:
            step()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(s,), daemon=True) for s in steps[:-1]]
    for t in threads:
        t.start()
    if steps:
        guarded(steps[-1])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _chain_exists(ipt: str, table: str, chain: str) -> bool:
    res = subprocess.run([ipt, "-t", table, "-S", chain], capture_output=True, check=False)
    return res.returncode == 0


def _ensure_chain(ipt: str, table: str, chain: str, parent: str) -> None:
    if not _chain_exists(ipt, table, chain):
        _run([ipt, "-t", table, "-N", chain])
    jump = [ipt, "-t", table, "-C", parent, "-j", chain]
    if subprocess.run(jump, capture_output=True, check=False).returncode != 0:
        _run([ipt, "-t", table, "-I", parent, "-j", chain])


def _delete_tagged(ipt: str, table: str, chain: str, t: str) -> None:
    """Delete every rule of ``chain`` whose comment is ``t`` (``-S`` lines replayed as ``-D``)."""
    listing = _run([ipt, "-t", table, "-S", chain], check=False)
    doomed = [
        "-D" + line[2:]  # ``-S`` prints rules in restore syntax
        for line in listing.splitlines()
        if line.startswith("-A ") and (f"--comment {t}" in line or f'"{t}"' in line)
    ]
    if doomed:
        _run(
            [f"{ipt}-restore", "--noflush"], stdin=f"*{table}\n" + "\n".join(doomed) + "\nCOMMIT\n"
        )
