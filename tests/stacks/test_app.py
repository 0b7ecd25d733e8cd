"""App hosts behind the ALB: the dashboard (its `/api/v1/*` proxy included) for browsers, the
API only under its own host name, health on /healthz."""

from __future__ import annotations

import fnmatch
from types import ModuleType
from typing import Any

import pytest
from pulumi import Output

from stacks.app import API_PATHS, NO_TLS_WARNING, TLS_POLICY, App, AppArgs
from tests.stacks.conftest import Mocks, Recorded, of_type, pulumi_test

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
API_HOST = "api.adpulse.example.com"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"


def _matches(condition: dict[str, Any], host: str, path: str) -> bool:
    """One ALB rule condition: patterns with * and ?; hosts case-insensitive, paths not."""
    if "pathPattern" in condition:
        return any(fnmatch.fnmatchcase(path, p) for p in condition["pathPattern"]["values"])
    if "hostHeader" in condition:
        values = condition["hostHeader"]["values"]
        return any(fnmatch.fnmatchcase(host.lower(), p.lower()) for p in values)
    raise AssertionError(f"the test does not model condition {condition}")


def _forward(actions: list[dict[str, Any]]) -> str:
    (action,) = actions
    assert action["type"] == "forward"
    return str(action["targetGroupArn"])


def route(mocks: Mocks, listener: Recorded, host: str, path: str) -> str:
    """The target group the ALB sends `GET path` with `Host: host` to: the listener's rules in
    priority order, every condition of a rule must match, else the default action."""
    arn = f"arn:aws:lb:us-east-1:123456789012:{listener.id}"
    rules = sorted(
        (r.inputs for r in of_type(mocks, RULE) if r.inputs["listenerArn"] == arn),
        key=lambda rule: rule["priority"],
    )
    for rule in rules:
        if all(_matches(c, host, path) for c in rule["conditions"]):
            return _forward(rule["actions"])
    return _forward(listener.inputs["defaultActions"])


def _recorded(mocks: Mocks, typ: str, name: str) -> Recorded:
    (found,) = [r for r in mocks.resources if r.type == typ and r.name == name]
    return found


def _group(mocks: Mocks, name: str) -> str:
    group = _recorded(mocks, "aws:lb/targetGroup:TargetGroup", name)
    return f"arn:aws:lb:us-east-1:123456789012:{group.id}"


@pulumi_test
def test_two_hosts_in_two_azs_with_imdsv2(program: ModuleType) -> Output[None]:
    def check(hosts: list[list[Any]]) -> None:
        assert len(hosts) == 2
        types, azs, metadata = zip(*hosts, strict=True)
        assert set(types) == {"t4g.large"}
        assert len(set(azs)) == 2
        assert all(m["http_tokens"] == "required" for m in metadata)

    return Output.all(
        *(
            Output.all(i.instance_type, i.availability_zone, i.metadata_options)
            for i in program.app.instances
        )
    ).apply(check)


def test_hosts_are_ebs_optimized(mocks: Mocks) -> None:
    hosts = [
        i for i in of_type(mocks, "aws:ec2/instance:Instance") if i.name.startswith("adpulse-app-")
    ]
    assert len(hosts) == 2
    assert all(h.inputs.get("ebsOptimized") is True for h in hosts), "CKV_AWS_135"


@pytest.mark.parametrize(
    "path", ["/api/v1/summary", "/api/v1/campaigns", "/api/v1/export.csv", "/", "/campaigns"]
)
def test_browsers_get_the_dashboard_and_its_api_proxy(
    program: ModuleType, mocks: Mocks, path: str
) -> None:
    """The browser's `/api/v1/*` calls must reach the dashboard's same-origin proxy, which adds
    the API key; routed to the API they would all answer 401 (the routing before issue #12)."""
    listener = _recorded(mocks, LISTENER, "adpulse-http")
    host = "adpulse-alb-123.us-east-1.elb.amazonaws.com"
    assert route(mocks, listener, host, path) == _group(mocks, "adpulse-dashboard-tg")


def test_the_api_is_not_behind_the_alb_without_a_host_name(mocks: Mocks) -> None:
    listener = _recorded(mocks, LISTENER, "adpulse-http")
    groups = [g.name for g in of_type(mocks, "aws:lb/targetGroup:TargetGroup")]
    assert "adpulse-api-tg" not in groups
    for path in ("/api/v1/summary", "/metrics", "/healthz", "/readyz"):
        assert route(mocks, listener, API_HOST, path) == _group(mocks, "adpulse-dashboard-tg")


def test_the_route_model_tells_the_old_routing_apart(mocks: Mocks) -> None:
    """The model above, fed the old `/api/*` -> API rule, sends the panels' calls to the API."""
    listener = _recorded(mocks, LISTENER, "adpulse-http")
    arn = f"arn:aws:lb:us-east-1:123456789012:{listener.id}"
    old = Mocks()
    old.resources = [
        listener,
        Recorded(
            RULE,
            "old-api-rule",
            {
                "listenerArn": arn,
                "priority": 10,
                "conditions": [{"pathPattern": {"values": ["/api/*"]}}],
                "actions": [{"type": "forward", "targetGroupArn": "api-tg"}],
            },
            "old-rule-id",
        ),
    ]
    assert route(old, listener, "alb", "/api/v1/summary") == "api-tg"


@pytest.fixture(scope="module")
def machine_app(program: ModuleType, mocks: Mocks) -> App:
    """An App with a certificate and an API host name, next to the session's program."""
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    net = program.network
    app = App(
        "machine",
        AppArgs(
            app_subnet_ids=net.app_subnet_ids,
            public_subnet_ids=net.public_subnet_ids,
            vpc_id=net.vpc.id,
            app_security_group_id=net.security_groups["app"].id,
            alb_security_group_id=net.security_groups["alb"].id,
            instance_profile="profile",
            ami_name_filter="debian-12-arm64-*",
            ami_owner="136693071363",
            kms_key_arn=program.secrets.key.arn,
            certificate_arn=CERT,
            api_hostname=API_HOST,
        ),
    )
    _sync_await(wait_for_rpcs())
    return app


@pytest.mark.parametrize(
    ("host", "path", "group"),
    [
        (API_HOST, "/api/v1/summary", "machine-api-tg"),
        ("API.adpulse.example.com", "/api/v1/export.csv", "machine-api-tg"),
        (API_HOST, "/metrics", "machine-dashboard-tg"),  # Prometheus data stays in the VPC
        (API_HOST, "/", "machine-dashboard-tg"),
        ("adpulse.example.com", "/api/v1/summary", "machine-dashboard-tg"),
    ],
)
def test_machine_clients_reach_the_api_under_its_host_name_only(
    machine_app: App, mocks: Mocks, host: str, path: str, group: str
) -> None:
    listener = _recorded(mocks, LISTENER, "machine-https")
    assert route(mocks, listener, host, path) == _group(mocks, group)
    assert API_PATHS == ["/api/v1/*"]


def test_an_api_host_name_without_a_certificate_is_refused(program: ModuleType) -> None:
    net = program.network
    with pytest.raises(ValueError, match="api_hostname needs certificate_arn"):
        App(
            "plain",
            AppArgs(
                app_subnet_ids=net.app_subnet_ids,
                public_subnet_ids=net.public_subnet_ids,
                vpc_id=net.vpc.id,
                app_security_group_id="sg-app",
                alb_security_group_id="sg-alb",
                instance_profile="profile",
                ami_name_filter="debian-12-arm64-*",
                ami_owner="136693071363",
                kms_key_arn="key",
                api_hostname=API_HOST,
            ),
        )


@pulumi_test
def test_target_groups_check_healthz_on_their_ports(machine_app: App) -> Output[None]:
    groups = machine_app.target_groups

    def check(values: list[Any]) -> None:
        ports = dict(zip(groups, [v[0] for v in values], strict=True))
        assert ports == {"dashboard": 3000, "api": 8000}
        assert all(v[1]["path"] == "/healthz" for v in values)

    return Output.all(*(Output.all(g.port, g.health_check) for g in groups.values())).apply(check)


def test_every_host_is_registered_in_each_target_group(machine_app: App, mocks: Mocks) -> None:
    pairs = {
        (a.inputs["targetGroupArn"].rsplit(":", 1)[-1], a.inputs["targetId"])
        for a in of_type(mocks, "aws:lb/targetGroupAttachment:TargetGroupAttachment")
    }
    # The session's app: 2 hosts in the dashboard group; the machine app: 2 hosts in 2 groups.
    assert len({p for p in pairs if p[0].startswith("adpulse-")}) == 2
    assert len({p for p in pairs if p[0].startswith("machine-")}) == 4


@pulumi_test
def test_without_a_certificate_http_is_served_with_a_warning(program: ModuleType) -> Output[None]:
    app = program.app
    assert app.tls_warning == NO_TLS_WARNING and "adpulse:certificateArn" in NO_TLS_WARNING

    def check(values: list[Any]) -> None:
        protocol, url = values
        assert protocol == "HTTP" and url.startswith("http://")

    return Output.all(app.listeners[0].protocol, app.dashboard_url).apply(check)


@pulumi_test
def test_with_a_certificate_https_serves_and_http_redirects(machine_app: App) -> Output[None]:
    https, redirect = machine_app.listeners
    assert machine_app.tls_warning == ""

    def check(values: list[Any]) -> None:
        port, protocol, policy, cert_arn, redirect_actions, url = values
        assert (port, protocol, policy, cert_arn) == (443, "HTTPS", TLS_POLICY, CERT)
        assert redirect_actions[0]["redirect"]["protocol"] == "HTTPS"
        assert url.startswith("https://")

    return Output.all(
        https.port,
        https.protocol,
        https.ssl_policy,
        https.certificate_arn,
        redirect.default_actions,
        machine_app.dashboard_url,
    ).apply(check)
