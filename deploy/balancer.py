"""The load balancer in front of the app hosts, as the rolling deploy uses it: take one host
out (drain), put it back (enable), and say where it stands (state).

Two implementations: `deploy.balancer_alb.AlbBalancer` (production: ALB target groups, boto3)
and `deploy.balancer_haproxy.HaproxyBalancer` (HAProxy's runtime API over its admin socket).
Both speak of hosts as `deploy.inventory.Host`: the ALB by `instance_id`, HAProxy by `name`
(the server name in each backend).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from adpulse.errors import AdpulseError
from deploy.inventory import Host

log = logging.getLogger("adpulse.deploy.balancer")

# What `Balancer.state` answers, the same words whichever balancer.
SERVING = "serving"  # gets new requests, passes its health checks
DRAINING = "draining"  # gets no new requests; requests already in flight may still run
OUT = "out"  # gets no requests at all (deregistered; HAProxy maintenance)
STARTING = "starting"  # put back, not yet seen healthy: gets no requests yet
UNHEALTHY = "unhealthy"  # put back but failing its health checks: gets no requests


class BalancerError(AdpulseError):
    """The balancer refused a change, could not be reached, or a host did not come back
    healthy in time; the message names the group (backend), the host and what to do."""


class Balancer(Protocol):
    """One host at a time in and out of every group (target group, backend) it serves in.

    Calls block until done; none retries a refused change. Hosts are matched by identity
    only: a host the balancer does not know raises BalancerError.
    """

    def drain(self, host: Host) -> None:
        """Stop sending `host` new requests in every group, then wait until its in-flight
        requests are done or the balancer's drain deadline passes; either way the host ends
        OUT (what still runs at the deadline is ended by the restart that follows, as the ALB
        ends it at its deregistration delay: a warning is logged). Draining an OUT host does
        nothing. Raises BalancerError if a group refuses the change or cannot be reached."""
        ...

    def enable(self, host: Host) -> None:
        """Put `host` back in every group and wait until each sees it healthy: SERVING on
        return. Raises BalancerError naming the group, the host and its last health-check
        result when it is not healthy by the enable deadline; the host is then taken out again
        (OUT, without waiting for a drain: it had no requests), so a bad release never
        serves. Enabling a SERVING host only confirms it."""
        ...

    def state(self, host: Host) -> str:
        """SERVING, DRAINING, OUT, STARTING or UNHEALTHY when every group agrees (see
        `combined`); does not change anything."""
        ...


def combined(states: Mapping[str, str]) -> str:
    """One state for a host from its state in each group: the common word when they agree,
    else `group=state` pairs in group order, so a half-drained host never reads as one state.
    """
    if not states:
        raise ValueError("a host's state needs at least one group")
    words = set(states.values())
    if len(words) == 1:
        return words.pop()
    return " ".join(f"{group}={states[group]}" for group in sorted(states))
