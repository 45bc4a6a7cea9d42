"""Can this machine do packet faults? Each feature is tried for real, in a scratch namespace,
and comes with the reason when it cannot be had (for ``pytest.skip(reason)``).

Probes are cached per process; each costs a few tens of milliseconds (NFQUEUE about 0.2 s: it
starts a Python inside a namespace and binds a queue there).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass

from simulators.packets.errors import CommandError, FeatureUnavailable
from simulators.packets.netns import delete_netns_sync, new_names, run_sync

FEATURES = ("root", "netns", "nft", "iptables", "tbf", "nfqueue")


@dataclass(frozen=True)
class Feature:
    name: str
    available: bool
    reason: str  # why not, or what was found


def check(name: str) -> Feature:
    """Whether this machine has feature ``name`` (one of ``FEATURES``), probed once a process."""
    return _cached(_known(name))


def probe(name: str) -> Feature:
    """Probe ``name`` now, without the cache."""
    name = _known(name)
    if name != "root":
        root = probe("root")
        if not root.available:
            return Feature(name, False, root.reason)
    try:
        reason = _PROBES[name]()
    except CommandError as exc:
        return Feature(name, False, str(exc))
    if reason is not None:
        return Feature(name, False, reason)
    return Feature(name, True, "ok")


def require(*names: str) -> None:
    """Raise FeatureUnavailable for the first of ``names`` this machine lacks."""
    for name in names:
        feature = check(name)
        if not feature.available:
            raise FeatureUnavailable(name, feature.reason)


def missing(*names: str) -> str | None:
    """Why the first unavailable feature of ``names`` is unavailable, or None if all are there."""
    for name in names:
        feature = check(name)
        if not feature.available:
            return f"{name}: {feature.reason}"
    return None


def probe_all() -> dict[str, Feature]:
    return {name: check(name) for name in FEATURES}


def _known(name: str) -> str:
    if name not in FEATURES:
        raise ValueError(f"unknown feature {name!r}; known: {', '.join(FEATURES)}")
    return name


_cached = functools.cache(probe)


def _root() -> str | None:
    if os.geteuid() != 0:
        return f"needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); running as uid {os.geteuid()}"
    return None


def _in_scratch_netns(*commands: list[str], stdin: str | None = None) -> None:
    """Run ``commands`` (``{ns}`` replaced by the namespace) in a namespace made for the probe."""
    name = new_names("cb-")[0].removesuffix("-b") + "-probe"
    run_sync(["ip", "netns", "add", name])
    try:
        for argv in commands:
            run_sync([arg.replace("{ns}", name) for arg in argv], stdin=stdin)
    finally:
        delete_netns_sync(name)


def _netns() -> str | None:
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    _in_scratch_netns(
        ["ip", "-n", "{ns}", "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
        ["ip", "-n", "{ns}", "link", "set", "p0", "up"],
    )
    return None


def _nft() -> str | None:
    # Reported, not used: this kernel lacks nft's native `queue` (probed under "nfqueue"), so the
    # rules are written with iptables-restore, which iptables-nft turns into nf_tables anyway.
    if shutil.which("nft") is None:
        return "the `nft` command (nftables) is not installed"
    script = (
        "table inet probe { chain forward { type filter hook forward priority filter;\n"
        "  numgen random mod 100 < 50 counter drop\n"
        "  meta l4proto tcp reject with tcp reset\n"
        "}\n}\n"
    )
    _in_scratch_netns(["ip", "netns", "exec", "{ns}", "nft", "-f", "-"], stdin=script)
    return None


def _iptables() -> str | None:
    # Every match and target rules.py writes, in one restore as rules.py does it.
    if shutil.which("iptables-restore") is None:
        return "the `iptables-restore` command (iptables) is not installed"
    script = (
        "*filter\n"
        "-A FORWARD -i p0 -m comment --comment probe -j DROP\n"
        "-A FORWARD -p tcp -j REJECT --reject-with tcp-reset\n"
        "-A FORWARD -m statistic --mode random --probability 0.5 -j DROP\n"
        "COMMIT\n"
    )
    _in_scratch_netns(["ip", "netns", "exec", "{ns}", "iptables-restore", "-w", "5"], stdin=script)
    return None


def _tbf() -> str | None:
    if shutil.which("tc") is None:
        return "the `tc` command (iproute2) is not installed"
    _in_scratch_netns(
        ["ip", "-n", "{ns}", "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
        ["tc", "-n", "{ns}", "qdisc", "add", "dev", "p0", "root", "tbf",
         "rate", "1mbit", "burst", "4000", "latency", "50ms"],
    )  # fmt: skip
    return None


def _nfqueue() -> str | None:
    try:
        import netfilterqueue  # noqa: F401, PLC0415 - probing whether it imports
    except ImportError as exc:
        return f"the netfilterqueue package cannot be imported: {exc}"
    # The rule needs the xtables NFQUEUE target; binding needs nfnetlink_queue in a namespace.
    script = "*filter\n-A FORWARD -p udp -j NFQUEUE --queue-num 0\nCOMMIT\n"
    bind = (
        "from netfilterqueue import NetfilterQueue as Q\n"
        "q = Q(); q.bind(0, lambda p: p.accept()); q.unbind()\n"
    )
    _in_scratch_netns(
        ["ip", "netns", "exec", "{ns}", "iptables-restore", "-w", "5"],
        ["ip", "netns", "exec", "{ns}", sys.executable, "-W", "ignore", "-c", bind],
        stdin=script,
    )
    return None


_PROBES = {
    "root": _root,
    "netns": _netns,
    "nft": _nft,
    "iptables": _iptables,
    "tbf": _tbf,
    "nfqueue": _nfqueue,
}
