"""App hosts behind the ALB: dashboard by default, /api/* to the API, health on /healthz."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pulumi import Output

from stacks.app import NO_TLS_WARNING, TLS_POLICY, App, AppArgs
from tests.stacks.conftest import Mocks, of_type, pulumi_test


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


@pulumi_test
def test_api_paths_go_to_the_api_and_the_rest_to_the_dashboard(
    program: ModuleType,
) -> Output[None]:
    app = program.app

    def check(values: list[Any]) -> None:
        listener_actions, paths, rule_actions, dashboard_tg, api_tg = values
        assert listener_actions[0]["target_group_arn"] == dashboard_tg
        assert paths == ["/api/*"]
        assert rule_actions[0]["target_group_arn"] == api_tg

    # A `values` field shadows dict.values, which Output.all would call: unwrap it first.
    paths = app.api_rule.conditions.apply(lambda c: list(c[0].path_pattern.values))
    return Output.all(
        app.listeners[0].default_actions,
        paths,
        app.api_rule.actions,
        app.target_groups["dashboard"].arn,
        app.target_groups["api"].arn,
    ).apply(check)


@pulumi_test
def test_target_groups_check_healthz_on_their_ports(program: ModuleType) -> Output[None]:
    groups = program.app.target_groups

    def check(values: list[Any]) -> None:
        ports = dict(zip(groups, [v[0] for v in values], strict=True))
        assert ports == {"dashboard": 3000, "api": 8000}
        assert all(v[1]["path"] == "/healthz" for v in values)

    return Output.all(*(Output.all(g.port, g.health_check) for g in groups.values())).apply(check)


def test_every_host_is_registered_in_both_target_groups(mocks: Mocks) -> None:
    pairs = {
        (a.inputs["targetGroupArn"].rsplit(":", 1)[-1], a.inputs["targetId"])
        for a in of_type(mocks, "aws:lb/targetGroupAttachment:TargetGroupAttachment")
    }
    assert len(pairs) == 4


@pulumi_test
def test_without_a_certificate_http_is_served_with_a_warning(program: ModuleType) -> Output[None]:
    app = program.app
    assert app.tls_warning == NO_TLS_WARNING and "adpulse:certificateArn" in NO_TLS_WARNING

    def check(values: list[Any]) -> None:
        protocol, url = values
        assert protocol == "HTTP" and url.startswith("http://")

    return Output.all(app.listeners[0].protocol, app.dashboard_url).apply(check)


@pulumi_test
def test_with_a_certificate_https_serves_and_http_redirects(program: ModuleType) -> Output[None]:
    net = program.network
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    app = App(
        "tls",
        AppArgs(
            app_subnet_ids=net.app_subnet_ids,
            public_subnet_ids=net.public_subnet_ids,
            vpc_id=net.vpc.id,
            app_security_group_id=net.security_groups["app"].id,
            alb_security_group_id=net.security_groups["alb"].id,
            instance_profile="profile",
            ami_name_filter="ubuntu/images/*arm64*",
            ami_owner="099720109477",
            kms_key_arn=program.secrets.key.arn,
            certificate_arn=cert,
        ),
    )
    https, redirect = app.listeners
    assert app.tls_warning == ""

    def check(values: list[Any]) -> None:
        port, protocol, policy, cert_arn, redirect_actions, url = values
        assert (port, protocol, policy, cert_arn) == (443, "HTTPS", TLS_POLICY, cert)
        assert redirect_actions[0]["redirect"]["protocol"] == "HTTPS"
        assert url.startswith("https://")

    return Output.all(
        https.port,
        https.protocol,
        https.ssl_policy,
        https.certificate_arn,
        redirect.default_actions,
        app.dashboard_url,
    ).apply(check)
