"""The inventory from AWS: the resources that carry the stack's tags, read with boto3.

For when neither the Pulumi CLI nor a saved outputs file is at hand; it gives what
`from_outputs` gives for the same stack. Every resource the program creates carries
`Project=adpulse` and `Stack=<stack>` (stacks/default_tags.py), instances also `Name` and `Role`.
The ClickHouse shape and CA are read from the nodes' user data (deploy/node_userdata.py); what
AWS does not record at all comes from the program's constants (deploy/stack_facts.py).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

from deploy import stack_facts as facts
from deploy import tagged
from deploy.aws_calls import aws_errors, session_for
from deploy.inventory import (
    KAFKA_SCRAM,
    POSTGRES_MASTER,
    Host,
    InventoryError,
    StackInventory,
    host_order,
)
from deploy.node_userdata import NodeFacts, node_facts, unpack
from deploy.stack_secrets import login_of, with_secrets
from deploy.tagged import TaggedStack
from stacks.cluster_shape import (
    clickhouse_url,
    grid_topology,
    in_domain,
    settings_topology,
    topology_toml,
)

# Not terminated: a stopped host is still the stack's, and the deploy must fail on it by name.
_LIVE = ("pending", "running", "stopping", "stopped")


def discover(stack: str, region: str, session: Any = None) -> StackInventory:
    """The inventory of `stack` in `region`, secrets read (`with_secrets`), from AWS alone.

    `session` is a boto3 Session (default: the usual credential chain). Raises InventoryError:
    one line naming the stack and region when nothing carries its tags, or naming the part that
    is missing, doubled or unreadable.
    """
    aws = session_for(region, session)
    st = TaggedStack(stack, region)

    def client(service: str) -> Any:
        return aws.client(service, region_name=region)

    ec2 = client("ec2")
    app, nodes = _instances(ec2, st)
    nodes, (shards, replicas, domain, ca_pem) = _clickhouse(ec2, nodes)
    try:
        topology = in_domain(grid_topology(shards, replicas), domain)
    except ValueError as exc:
        raise InventoryError(f"stack {stack!r}: ClickHouse user data: {exc}") from None
    found = sorted(host.name for host in nodes)
    if found != sorted(topology.hosts):
        raise InventoryError(
            f"stack {stack!r} in {region} has ClickHouse instances {', '.join(found)}, but their "
            f"user data describes {topology.summary()} ({', '.join(topology.hosts)}): a node is "
            "missing; run `pulumi up`, or use --outputs"
        )
    kafka = client("kafka")
    cluster = tagged.kafka_cluster(kafka, st)
    postgres, master_arn = tagged.postgres(client("rds"), st)
    inv = StackInventory(
        stack=stack,
        region=region,
        app_hosts=host_order(app),
        clickhouse_hosts=host_order(nodes),
        clickhouse_url=clickhouse_url(topology),
        topology=settings_topology(topology),
        clickhouse_topology_toml=topology_toml(topology),
        clickhouse_ca_pem=ca_pem,
        kafka_bootstrap=tagged.kafka_bootstrap(kafka, cluster),
        kafka_security_protocol=facts.KAFKA_SECURITY_PROTOCOL,
        kafka_sasl_mechanism=facts.KAFKA_SASL_MECHANISM,
        kafka_sasl_username="",  # the SCRAM secret's, below
        topic_replication_factor=tagged.replication_factor(kafka, cluster),
        redis_url=tagged.redis_url(client("elasticache"), st),
        postgres_url=postgres,
        api_host=facts.API_HOST,
        api_port=facts.API_PORT,
        dashboard_port=facts.DASHBOARD_PORT,
        dashboard_url=tagged.dashboard_url(client("elbv2"), st),
        cloudwatch_metrics=tagged.consumer_alarmed(client("cloudwatch"), st),
        secret_arns={
            **tagged.secret_arns(client("secretsmanager"), st),
            POSTGRES_MASTER: master_arn,
        },
    )
    inv = with_secrets(inv, aws)
    username, _ = login_of(KAFKA_SCRAM, inv.secrets[KAFKA_SCRAM], inv.secret_arns[KAFKA_SCRAM])
    return dataclasses.replace(inv, kafka_sasl_username=username)


def _instances(ec2: Any, st: TaggedStack) -> tuple[list[Host], list[Host]]:
    filters = [
        {"Name": "tag:Project", "Values": [facts.PROJECT]},
        {"Name": "tag:Stack", "Values": [st.name]},
        {"Name": "instance-state-name", "Values": list(_LIVE)},
    ]
    doing = f"listing the EC2 instances of stack {st.name} in {st.region}"
    reservations = tagged.pages(ec2, "describe_instances", "Reservations", doing, Filters=filters)
    hosts: dict[str, Host] = {}
    for instance in (i for r in reservations for i in r.get("Instances", [])):
        tags, iid = tagged.tag_map(instance.get("Tags")), instance["InstanceId"]
        role, name = tags.get("Role"), tags.get("Name", "")
        if role not in ("app", "clickhouse"):
            continue
        if not name or name in hosts:
            problem = f"shares Name={name} with {hosts[name].instance_id}" if name else "no Name"
            raise InventoryError(
                f"stack {st.name!r}: instance {iid} (Role={role}) has {problem}; the deploy "
                "names hosts by their Name tag: terminate or retag the stray instance"
            )
        hosts[name] = Host(
            name=name,
            role="app" if role == "app" else "clickhouse",
            instance_id=iid,
            private_ip=instance.get("PrivateIpAddress", ""),
            availability_zone=instance.get("Placement", {}).get("AvailabilityZone", ""),
        )
    if not hosts:
        raise InventoryError(
            f"no stack {st.name!r} in {st.region}: no EC2 instance there is tagged {st.tags}; "
            "`pulumi stack ls` lists the stacks, and the region is the stack's aws:region"
        )
    app = [h for h in hosts.values() if h.role == "app"]
    nodes = [h for h in hosts.values() if h.role == "clickhouse"]
    if not app:
        raise st.missing("app host (Role=app)")
    if not nodes:
        raise st.missing("ClickHouse node (Role=clickhouse)")
    return app, nodes


def _clickhouse(ec2: Any, nodes: list[Host]) -> tuple[list[Host], tuple[int, int, str, str]]:
    """The nodes with their FQDNs, and what every node's user data agrees on: shards, replicas,
    domain and CA."""
    read: list[tuple[Host, NodeFacts]] = []
    for host in nodes:
        where = f"ClickHouse instance {host.instance_id} ({host.name})"
        with aws_errors(f"reading the user data of {where}"):
            answer = ec2.describe_instance_attribute(
                InstanceId=host.instance_id, Attribute="userData"
            )
        try:
            text = unpack(base64.b64decode(answer.get("UserData", {}).get("Value", "")))
        except (binascii.Error, ValueError):
            text = ""
        fact = node_facts(text, where)
        if fact.host != host.name:
            raise InventoryError(f"{where}: its user data is {fact.host}'s; retag or replace it")
        read.append((dataclasses.replace(host, fqdn=fact.fqdn), fact))

    def cluster_facts(fact: NodeFacts) -> tuple[int, int, str, str]:
        return fact.shards, fact.replicas, fact.domain, fact.ca_pem

    first = read[0][1]
    for host, fact in read[1:]:
        if cluster_facts(fact) != cluster_facts(first):
            raise InventoryError(
                f"ClickHouse nodes {first.host} and {host.name} disagree in their user data "
                "(cluster shape, domain or CA): a node predates the last change; use --outputs"
            )
    return [host for host, _ in read], cluster_facts(first)
