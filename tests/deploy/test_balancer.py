"""The deploy's balancers: HAProxy for real (a haproxy process in front of local HTTP servers),
the ALB against moto.

moto moves a target to `healthy` the moment it is registered and to `unused` the moment it is
deregistered: the `draining` and `initial` phases, health checks and the deregistration delay
exist only on AWS. The ALB tests check the calls, groups, ports and errors against moto, the
waits by their hand-computed settings, and the slow paths by rewriting moto's health answer
to what AWS shows (`draining`, `unhealthy`).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.balancer import DRAINING, OUT, SERVING, STARTING, UNHEALTHY, BalancerError, combined
from deploy.balancer_alb import (
    AlbBalancer,
    drain_waiter_config,
    group_name,
    stack_target_groups,
    waiter_config,
)
from deploy.balancer_haproxy import HaproxyBalancer, parse_stat, server_state
from deploy.inventory import Host, InventoryError
from deploy.tagged import TaggedStack
from tests.conftest import fake_aws_credentials
from tests.support.haproxy import BACKEND, Haproxy, Held, Traffic, get, haproxy
from tests.support.processes import alive

REGION = "us-east-1"


def host(name: str, instance_id: str = "") -> Host:
    return Host(name, "app", instance_id or f"i-{name}", "127.0.0.1", f"{REGION}a")


class Warnings(logging.Handler):
    """The balancer's warnings (pytest runs with `-p no:logging`: no caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[Warnings]:
    handler, logger = Warnings(), logging.getLogger("adpulse.deploy.balancer")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# --- pure parts ---------------------------------------------------------------------------------


def test_one_state_when_groups_agree_else_each_group_named() -> None:
    assert combined({"api": SERVING, "dashboard": SERVING}) == SERVING
    assert combined({"dashboard": OUT, "api": SERVING}) == "api=serving dashboard=out"


@pytest.mark.parametrize(
    ("status", "state"),
    [("UP", SERVING), ("UP 1/2", SERVING), ("no check", SERVING), ("DRAIN", DRAINING),
     ("DRAIN 1/2", DRAINING), ("NOLB", DRAINING), ("MAINT", OUT), ("MAINT (via b/s)", OUT),
     ("DOWN", UNHEALTHY), ("DOWN 1/2", STARTING)],
)  # fmt: skip
def test_haproxy_statuses_map_to_balancer_states(status: str, state: str) -> None:
    assert server_state(status) == state


def test_show_stat_rows_by_backend_and_server() -> None:
    text = "# pxname,svname,scur,status,\nweb,FRONTEND,1,OPEN,\napp,app-1,2,UP,\n\n"
    rows = parse_stat(text)
    assert rows[("app", "app-1")]["scur"] == "2" and rows[("app", "app-1")]["status"] == "UP"
    with pytest.raises(BalancerError, match="not its CSV"):
        parse_stat("Unknown command.\n")


def test_waiters_poll_for_the_deregistration_delay_and_stop_at_our_deadline() -> None:
    # Hand-computed: the stack's 30 s delay -> every 3 s for 30 + 30 s: 1 + 20 attempts.
    assert drain_waiter_config(30, 300) == {"Delay": 3, "MaxAttempts": 21}
    # AWS's default 300 s delay, capped by a 120 s deadline: every 15 s, 1 + 8 attempts.
    assert drain_waiter_config(300, 120) == {"Delay": 15, "MaxAttempts": 9}
    assert drain_waiter_config(0, 300) == {"Delay": 1, "MaxAttempts": 31}
    assert waiter_config(15, 1) == {"Delay": 1, "MaxAttempts": 2}  # never sleeps past budget
    assert waiter_config(15, -2) == {"Delay": 1, "MaxAttempts": 1}  # deadline gone: look once


def test_group_names_come_from_the_arn() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/adpulse-api-tg/50dc6c"
    assert group_name(arn) == "adpulse-api-tg"


# --- HAProxy, for real --------------------------------------------------------------------------


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[Haproxy]:
    with haproxy(tmp_path) as running:
        yield running


def balancer_for(ha: Haproxy, **deadlines: float) -> HaproxyBalancer:
    return HaproxyBalancer(ha.socket_path, [BACKEND], poll=0.05, **deadlines)


def test_drained_server_gets_no_new_request_while_the_others_serve(ha: Haproxy) -> None:
    lb, app1 = balancer_for(ha), host("app-1")
    lb.drain(app1)
    assert lb.state(app1) == OUT and lb.state(host("app-2")) == SERVING
    before = {name: s.requests for name, s in ha.servers.items()}
    answers = [get(ha.url()) for _ in range(12)]
    assert set(answers) == {"app-2", "app-3"}
    assert ha.servers["app-1"].requests == before["app-1"]
    assert sum(s.requests for s in ha.servers.values()) == sum(before.values()) + 12


def test_drain_waits_for_the_request_in_flight(ha: Haproxy) -> None:
    lb, app1, server = balancer_for(ha, drain_deadline=20), host("app-1"), ha.servers["app-1"]
    held = Held(ha, server)
    draining = threading.Thread(target=lb.drain, args=(app1,))
    draining.start()
    time.sleep(0.6)
    assert draining.is_alive(), "drain returned while a request was in flight"
    assert lb.state(app1) == DRAINING
    assert {get(ha.url()) for _ in range(6)} <= {"app-2", "app-3"}
    server.release.set()
    draining.join(10)
    assert not draining.is_alive()
    assert held.wait() == "app-1"  # finished, not cut
    assert lb.state(app1) == OUT


def test_drain_gives_up_at_its_deadline_and_says_so(ha: Haproxy, warnings: Warnings) -> None:
    lb, app1, server = balancer_for(ha, drain_deadline=0.5), host("app-1"), ha.servers["app-1"]
    held = Held(ha, server)
    started = time.monotonic()
    lb.drain(app1)
    assert 0.5 <= time.monotonic() - started < 5
    assert lb.state(app1) == OUT
    assert warnings.lines == [
        "app-1: requests still in flight after 0.5 s (app: 1); taking it out anyway"
    ]
    server.release.set()  # maintenance takes no request away: the restart would
    assert held.wait() == "app-1"


def test_enable_waits_for_the_restarted_server_to_pass_its_checks(ha: Haproxy) -> None:
    lb, app1, server = balancer_for(ha, enable_deadline=20), host("app-1"), ha.servers["app-1"]
    lb.drain(app1)
    server.stop()
    server.start_later(1.0)
    started = time.monotonic()
    lb.enable(app1)
    assert time.monotonic() - started >= 1.0, "enable returned before the server was back"
    assert lb.state(app1) == SERVING
    before = server.requests
    assert "app-1" in {get(ha.url()) for _ in range(9)}
    assert server.requests > before


def test_rolling_drain_and_enable_under_steady_traffic_fails_no_request(ha: Haproxy) -> None:
    lb = balancer_for(ha, drain_deadline=20, enable_deadline=20)
    back = {}
    with Traffic(ha) as traffic:
        for name, server in ha.servers.items():
            lb.drain(host(name))
            server.stop()  # the restart of its units
            server.start_later(0.3)
            lb.enable(host(name))
            back[name] = traffic.wait_for(name, since=len(traffic.answered))
    assert traffic.failures == []
    assert len(traffic.answered) > 20
    assert all(back.values()), f"servers that got no request after enable: {back}"


def test_the_traffic_check_sees_a_server_put_back_before_it_answers(ha: Haproxy) -> None:
    """The fault enable avoids: `state ready` straight from maintenance while the service is
    still down. HAProxy takes it as UP until its checks fail, and requests fail meanwhile."""
    lb, server = balancer_for(ha), ha.servers["app-1"]
    lb.drain(host("app-1"))
    server.stop()
    with Traffic(ha, threads=3) as traffic:
        time.sleep(0.2)
        assert lb._send(f"set server {BACKEND}/app-1 state ready").strip() == ""
        time.sleep(1.5)
    assert traffic.failures, "the naive enable lost no request: this test proves nothing"


def test_enable_of_a_failing_server_names_its_check_and_keeps_it_out(ha: Haproxy) -> None:
    lb, app2, server = balancer_for(ha, enable_deadline=1), host("app-2"), ha.servers["app-2"]
    lb.drain(app2)
    server.healthy = False
    with pytest.raises(BalancerError) as caught:
        lb.enable(app2)
    message = str(caught.value)
    assert message.startswith("haproxy backend app: server app-2 not healthy after 1 s (DOWN")
    assert "last check L7STS 503: Service Unavailable" in message
    assert "\n" not in message
    assert lb.state(app2) == OUT
    before = server.requests
    assert {get(ha.url()) for _ in range(6)} == {"app-1", "app-3"}
    assert server.requests == before


def test_enable_of_a_serving_server_only_confirms_it(ha: Haproxy) -> None:
    lb, app3 = balancer_for(ha, enable_deadline=5), host("app-3")
    lb.enable(app3)
    assert lb.state(app3) == SERVING


def test_unknown_server_backend_and_bad_names_are_one_line_errors(ha: Haproxy) -> None:
    with pytest.raises(BalancerError, match=r"backend app has no server app-9 \(servers: app-1, "):
        balancer_for(ha).drain(host("app-9"))
    with pytest.raises(BalancerError, match=r"backend api has no server app-1 \(no such backend\)"):
        HaproxyBalancer(ha.socket_path, ["api"]).state(host("app-1"))
    with pytest.raises(BalancerError, match="'app-1;shutdown sessions' cannot be named"):
        balancer_for(ha).drain(host("app-1;shutdown sessions"))
    assert balancer_for(ha).state(host("app-1")) == SERVING


def test_no_admin_socket_is_a_clear_error(tmp_path: Path) -> None:
    lb = HaproxyBalancer(tmp_path / "admin.sock", [BACKEND])
    with pytest.raises(
        BalancerError, match=r"cannot reach haproxy's admin socket .* level admin`\?$"
    ):
        lb.state(host("app-1"))


def test_the_launcher_leaves_no_haproxy_or_server_behind(tmp_path: Path) -> None:
    with haproxy(tmp_path) as running:
        Held(running, running.servers["app-2"])  # a request still open at the end
        pid = running.proc.pid
        ports = [running.port, *(s.port for s in running.servers.values())]
    assert not alive(pid)
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


# --- ALB, against moto --------------------------------------------------------------------------


class Alb:
    """moto's EC2 and ELBv2 with three running app instances registered in the stack's two
    target groups (dashboard on 3000, API on 8000), and one group of another stack."""

    def __init__(self) -> None:
        import boto3

        ec2 = boto3.client("ec2", region_name=REGION)
        self.ec2, self.elbv2 = ec2, boto3.client("elbv2", region_name=REGION)
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=self.vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        found = ec2.run_instances(ImageId="ami-12345678", MinCount=3, MaxCount=3, SubnetId=subnet)
        ids = sorted(i["InstanceId"] for i in found["Instances"])
        self.hosts = [host(f"app-{n + 1}", iid) for n, iid in enumerate(ids)]
        self.groups = {role: self.group(role, port, "prod") for role, port in PORTS.items()}
        self.stray = self.group("dashboard", 3000, "dev")
        for arn in self.groups.values():
            self.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])

    def group(self, role: str, port: int, stack: str) -> str:
        arn: str = self.elbv2.create_target_group(
            Name=f"adpulse-{stack}-{role}-tg", Protocol="HTTP", Port=port, VpcId=self.vpc,
            HealthCheckIntervalSeconds=15, Tags=[{"Key": "Project", "Value": "adpulse"},
                                                 {"Key": "Stack", "Value": stack}],
        )["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
        self.elbv2.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}],
        )
        return arn

    def registered(self, role: str) -> dict[str, int]:
        found = self.elbv2.describe_target_health(TargetGroupArn=self.groups[role])
        return {d["Target"]["Id"]: d["Target"]["Port"] for d in found["TargetHealthDescriptions"]}

    def balancer(self, drain_deadline: float = 300, enable_deadline: float = 300) -> AlbBalancer:
        return AlbBalancer(
            self.elbv2,
            list(self.groups.values()),
            drain_deadline=drain_deadline,
            enable_deadline=enable_deadline,
        )

    def health_reads_as(self, state: str, reason: str, description: str) -> None:
        """What AWS shows and moto does not: every DescribeTargetHealth answers `state`."""

        def rewrite(parsed: dict[str, Any], **_: Any) -> None:
            for found in parsed.get("TargetHealthDescriptions", []):
                found["TargetHealth"] = {
                    "State": state, "Reason": reason, "Description": description
                }  # fmt: skip

        event = "after-call.elastic-load-balancing-v2.DescribeTargetHealth"
        self.elbv2.meta.events.register(event, rewrite, unique_id="health")

    def health_as_moto_has_it(self) -> None:
        event = "after-call.elastic-load-balancing-v2.DescribeTargetHealth"
        self.elbv2.meta.events.unregister(event, unique_id="health")


PORTS = {"dashboard": 3000, "api": 8000}


@pytest.fixture
def alb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Alb]:
    from moto import mock_aws

    fake_aws_credentials(monkeypatch)
    with mock_aws():
        yield Alb()


def test_alb_drain_takes_the_host_out_of_every_group_and_enable_puts_it_back(alb: Alb) -> None:
    lb, (app1, app2, app3) = alb.balancer(), alb.hosts
    lb.drain(app1)
    for role in PORTS:
        assert alb.registered(role) == {
            app2.instance_id: PORTS[role],
            app3.instance_id: PORTS[role],
        }
    assert lb.state(app1) == OUT and lb.state(app2) == SERVING
    lb.drain(app1)  # again: nothing to do, no error
    lb.enable(app1)
    for role, port in PORTS.items():  # each group's own port, as the stack's attachments
        assert alb.registered(role) == {h.instance_id: port for h in alb.hosts}
    assert lb.state(app1) == SERVING


def test_alb_drain_gives_up_at_its_deadline_while_aws_still_drains(
    alb: Alb, warnings: Warnings
) -> None:
    lb, app1 = alb.balancer(drain_deadline=1), alb.hosts[0]
    in_progress = "Target deregistration is in progress"
    alb.health_reads_as("draining", "Target.DeregistrationInProgress", in_progress)
    assert lb.state(app1) == DRAINING
    started = time.monotonic()
    lb.drain(app1)
    assert 1 <= time.monotonic() - started < 5
    assert len(warnings.lines) == 2
    assert warnings.lines[0] == (
        f"target group adpulse-prod-dashboard-tg: instance {app1.instance_id} (app-1) still "
        "draining: Target.DeregistrationInProgress (Target deregistration is in progress) "
        "after 1 s; going on"
    )


def test_alb_enable_of_an_unhealthy_host_names_group_instance_and_reason(alb: Alb) -> None:
    lb, app2 = alb.balancer(enable_deadline=1), alb.hosts[1]
    lb.drain(app2)
    alb.health_reads_as("unhealthy", "Target.FailedHealthChecks", "Health checks failed")
    with pytest.raises(BalancerError) as caught:
        lb.enable(app2)
    assert str(caught.value) == (
        f"target group adpulse-prod-dashboard-tg: instance {app2.instance_id} (app-2) not healthy "
        "after 1 s (unhealthy: Target.FailedHealthChecks (Health checks failed)); it is "
        "deregistered again: fix what fails its health check (GET /healthz), then enable it again"
    )
    alb.health_as_moto_has_it()
    assert lb.state(app2) == OUT
    assert all(app2.instance_id not in alb.registered(role) for role in PORTS)


def test_alb_errors_name_the_target_group_and_the_instance(alb: Alb) -> None:
    app1 = alb.hosts[0]
    gone = alb.groups["api"].replace("/adpulse-prod-api-tg/", "/adpulse-gone-tg/")
    with pytest.raises(BalancerError) as caught:
        AlbBalancer(alb.elbv2, [gone]).drain(app1)
    assert str(caught.value).startswith(
        f"target group adpulse-gone-tg: reading the health of instance {app1.instance_id} "
        "(app-1) failed: AWS answered TargetGroupNotFound: "
    )
    assert str(caught.value).endswith("read them again (deploy.balancer_alb.stack_target_groups)")
    alb.ec2.stop_instances(InstanceIds=[app1.instance_id])
    lb = alb.balancer()
    lb.drain(app1)
    with pytest.raises(BalancerError, match=r"registering instance i-\w+ \(app-1\) failed: AWS "
                       r"answered InvalidTarget: .*; is the instance running"):  # fmt: skip
        lb.enable(app1)
    with pytest.raises(BalancerError, match="app-9 has no instance id"):
        lb.state(Host("app-9", "app", "", "10.0.0.9", REGION))


def test_alb_target_groups_of_a_stack_are_found_by_its_tags(alb: Alb) -> None:
    found = stack_target_groups(alb.elbv2, TaggedStack("prod", REGION))
    assert found == sorted(alb.groups.values())
    with pytest.raises(InventoryError, match="stack 'qa' in us-east-1 has no target group tagged"):
        stack_target_groups(alb.elbv2, TaggedStack("qa", REGION))
