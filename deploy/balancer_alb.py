"""The ALB's target groups as the deploy's balancer (production), through boto3's elbv2 client.

Drain deregisters the host's instance from every target group, then waits with botocore's
`target_deregistered` waiter until each reports it `unused`: AWS completes a deregistration
when the target's in-flight requests are done, at the latest after the group's
deregistration delay (30 s in stacks/app.py). Enable registers it again and waits with
`target_in_service` until each group's health checks report it `healthy`.

Targets are given without a port unless the balancer has one, so each group uses its own
port, as the stack's attachments do: the dashboard group listens on 3000, the API's on 8000.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from deploy.aws_calls import aws_errors
from deploy.balancer import (
    DRAINING,
    OUT,
    SERVING,
    STARTING,
    UNHEALTHY,
    BalancerError,
    combined,
    log,
)
from deploy.inventory import Host
from deploy.tagged import TaggedStack, pages, tag_map

# AWS reports `unused` a little after the deregistration delay ends; the margin waits for it.
DRAIN_MARGIN = 30
MAX_POLL = 15  # s: botocore's own delay for both waiters
STATES = {
    "healthy": SERVING,
    "draining": DRAINING,
    "unhealthy.draining": DRAINING,
    "unused": OUT,
    "initial": STARTING,
    "unhealthy": UNHEALTHY,
}
_HINTS = {
    "TargetGroupNotFound": "; the stack's target groups changed: read them again "
    "(deploy.balancer_alb.stack_target_groups)",
    "InvalidTarget": "; is the instance running, and in the target group's VPC?",
    "AccessDenied": "; the deploy's AWS identity needs this permission (stacks/README.md)",
}


def drain_waiter_config(deregistration_delay: int, budget: float) -> dict[str, int]:
    """`target_deregistered` settings: poll every tenth of the group's deregistration delay
    (1 to 15 s) for the delay plus DRAIN_MARGIN, but never past `budget` seconds."""
    poll = min(MAX_POLL, max(1, deregistration_delay // 10))
    return waiter_config(poll, min(deregistration_delay + DRAIN_MARGIN, budget))


def waiter_config(poll: int, budget: float) -> dict[str, int]:
    """A botocore WaiterConfig that polls every `poll` s for `budget` s: the first attempt is
    immediate, each further one follows a `poll`-second sleep."""
    poll = max(1, min(poll, math.floor(budget)))
    return {"Delay": poll, "MaxAttempts": max(0, math.ceil(budget / poll)) + 1}


def group_name(arn: str) -> str:
    """`adpulse-dashboard-tg-1a2b` from `arn:...:targetgroup/adpulse-dashboard-tg-1a2b/<id>`."""
    parts = arn.split(":")[-1].split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "targetgroup" else arn


def stack_target_groups(elbv2: Any, st: TaggedStack) -> list[str]:
    """The ARNs of the stack's target groups (dashboard, and API when it has a host name), by
    the tags every resource of the stack carries; InventoryError when there are none."""
    doing = f"listing the target groups in {st.region}"
    arns = [
        g["TargetGroupArn"] for g in pages(elbv2, "describe_target_groups", "TargetGroups", doing)
    ]
    ours: list[str] = []
    with aws_errors(doing):
        for start in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs at a time
            answer = elbv2.describe_tags(ResourceArns=arns[start : start + 20])
            ours += [
                d["ResourceArn"] for d in answer["TagDescriptions"] if st.ours(tag_map(d["Tags"]))
            ]
    if not ours:
        raise st.missing("target group")
    return sorted(ours)


class AlbBalancer:
    """The Balancer over ALB target groups: `target_group_arns`, through `elbv2` (a boto3
    client). `drain_deadline` caps the wait for draining on top of each group's own delay;
    `enable_deadline` bounds the wait for health checks (15 s apart, 2 to pass in the stack).
    """

    def __init__(
        self,
        elbv2: Any,
        target_group_arns: Sequence[str],
        port: int | None = None,
        *,
        drain_deadline: float = 300.0,
        enable_deadline: float = 300.0,
    ) -> None:
        if not target_group_arns:
            raise ValueError("AlbBalancer needs at least one target group")
        self.client, self.groups, self.port = elbv2, tuple(target_group_arns), port
        self.drain_deadline, self.enable_deadline = drain_deadline, enable_deadline

    def drain(self, host: Host) -> None:
        target = self._target(host)
        # Deregistering a target that is not registered is an InvalidTarget error.
        aws_states = {arn: self._health(arn, host)["State"] for arn in self.groups}
        todo = [arn for arn, state in aws_states.items() if state != "unused"]
        for arn in todo:
            if aws_states[arn] != "draining":
                with self._aws(arn, host, "deregistering"):
                    self.client.deregister_targets(TargetGroupArn=arn, Targets=[target])
        end = time.monotonic() + self.drain_deadline
        for arn in todo:  # AWS drains every group at once; we look at each in turn
            with self._aws(arn, host, "reading the deregistration delay of"):
                attributes = self.client.describe_target_group_attributes(TargetGroupArn=arn)
            delay = {a["Key"]: a["Value"] for a in attributes["Attributes"]}.get(
                "deregistration_delay.timeout_seconds", "300"
            )
            config = drain_waiter_config(int(delay), end - time.monotonic())
            last = self._wait("target_deregistered", arn, host, config)
            if last is not None:
                log.warning(
                    "target group %s: instance %s (%s) still %s after %g s; going on",
                    group_name(arn),
                    target["Id"],
                    host.name,
                    last,
                    self.drain_deadline,
                )

    def enable(self, host: Host) -> None:
        target = self._target(host)
        for arn in self.groups:
            with self._aws(arn, host, "registering"):
                self.client.register_targets(TargetGroupArn=arn, Targets=[target])
        end = time.monotonic() + self.enable_deadline
        for arn in self.groups:
            with self._aws(arn, host, "reading the health check of"):
                group = self.client.describe_target_groups(TargetGroupArns=[arn])
            interval = int(group["TargetGroups"][0].get("HealthCheckIntervalSeconds", MAX_POLL))
            poll = min(MAX_POLL, max(1, interval))
            last = self._wait(
                "target_in_service", arn, host, waiter_config(poll, end - time.monotonic())
            )
            if last is not None:
                for other in self.groups:  # out again at once: it serves nothing to drain
                    with self._aws(other, host, "deregistering"):
                        self.client.deregister_targets(TargetGroupArn=other, Targets=[target])
                raise BalancerError(
                    f"target group {group_name(arn)}: instance {target['Id']} ({host.name}) not "
                    f"healthy after {self.enable_deadline:g} s ({last}); it is deregistered again: "
                    "fix what fails its health check (GET /healthz), then enable it again"
                )

    def state(self, host: Host) -> str:
        states = {}
        for arn in self.groups:
            state = self._health(arn, host)["State"]
            states[group_name(arn)] = STATES.get(state, state)
        return combined(states)

    def _health(self, arn: str, host: Host) -> dict[str, str]:
        """The target's TargetHealth in group `arn`: `unused` when it is not registered."""
        with self._aws(arn, host, "reading the health of"):
            answer = self.client.describe_target_health(
                TargetGroupArn=arn, Targets=[self._target(host)]
            )
        return dict(answer["TargetHealthDescriptions"][0]["TargetHealth"])

    def _wait(self, waiter: str, arn: str, host: Host, config: dict[str, int]) -> str | None:
        """None once the waiter succeeds; the target's last state and reason when it gives up;
        BalancerError when AWS answers with an error."""
        from botocore.exceptions import WaiterError

        try:
            self.client.get_waiter(waiter).wait(
                TargetGroupArn=arn, Targets=[self._target(host)], WaiterConfig=config
            )
        except WaiterError as exc:
            last = exc.last_response or {}
            if "Error" in last or not str(exc.kwargs.get("reason", "")).startswith("Max attempts"):
                error = last.get("Error", {})
                code, message = error.get("Code", "error"), error.get("Message", str(exc))
                raise BalancerError(
                    f"target group {group_name(arn)}: waiting for instance {host.instance_id} "
                    f"({host.name}) failed: AWS answered {code}: {message}{_HINTS.get(code, '')}"
                ) from None
            return _described(last)
        return None

    def _target(self, host: Host) -> dict[str, Any]:
        if not host.instance_id:
            raise BalancerError(f"{host.name} has no instance id: the ALB names targets by it")
        return {"Id": host.instance_id} | ({"Port": self.port} if self.port else {})

    @contextmanager
    def _aws(self, arn: str, host: Host, doing: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"target group {group_name(arn)}: {doing} instance {host.instance_id} ({host.name})"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "error"))
            message = " ".join(str(error.get("Message", "")).split())
            hint = _HINTS.get(code, _HINTS["AccessDenied"] if "Denied" in code else "")
            raise BalancerError(f"{where} failed: AWS answered {code}: {message}{hint}") from None
        except BotoCoreError as exc:
            raise BalancerError(f"{where} failed: {' '.join(str(exc).split())}") from None


def _described(response: dict[str, Any]) -> str:
    """`draining: Target.DeregistrationInProgress (Target deregistration is in progress)`."""
    found = response.get("TargetHealthDescriptions") or [{}]
    health = found[0].get("TargetHealth", {})
    words = [health.get("State", "no state"), health.get("Reason", "")]
    text = ": ".join(filter(None, words))
    return f"{text} ({health['Description']})" if health.get("Description") else text
