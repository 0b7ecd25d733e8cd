"""The stack's AWS resources found by their tags: one finder per service, each returning what
the inventory needs from it or raising InventoryError that names what is missing or doubled."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from adpulse import names
from deploy import stack_facts as facts
from deploy.aws_calls import aws_errors
from deploy.inventory import KAFKA_SCRAM, InventoryError

T = TypeVar("T")


@dataclass(frozen=True)
class TaggedStack:
    """A stack's name and region, and how its resources' tags are judged."""

    name: str
    region: str

    @property
    def tags(self) -> str:
        return f"Project={facts.PROJECT}, Stack={self.name}"

    def ours(self, tags: Mapping[str, str]) -> bool:
        return tags.get("Project") == facts.PROJECT and tags.get("Stack") == self.name

    def missing(self, what: str) -> InventoryError:
        return InventoryError(
            f"stack {self.name!r} in {self.region} has no {what} tagged {self.tags}: "
            "run `pulumi up` for it to the end, or use --outputs"
        )

    def one(self, what: str, found: Sequence[T], ident: Callable[[T], str]) -> T:
        if not found:
            raise self.missing(what)
        if len(found) > 1:
            raise InventoryError(
                f"stack {self.name!r} in {self.region} has {len(found)} {what}s tagged "
                f"{self.tags} ({', '.join(ident(x) for x in found)}), one expected: remove the "
                "stray one, or use --outputs"
            )
        return found[0]


def tag_map(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or ()}


def pages(client: Any, operation: str, key: str, doing: str, **params: Any) -> list[Any]:
    """Every `key` item of every page of `operation`; AWS failures as InventoryError."""
    with aws_errors(doing):
        paginator = client.get_paginator(operation).paginate(**params)
        return [item for page in paginator for item in page.get(key, [])]


def kafka_cluster(kafka: Any, st: TaggedStack) -> dict[str, Any]:
    doing = f"listing the MSK clusters in {st.region}"
    clusters = pages(kafka, "list_clusters_v2", "ClusterInfoList", doing)
    ours = [c for c in clusters if st.ours(c.get("Tags") or {})]
    return st.one("MSK cluster", ours, lambda c: str(c.get("ClusterName")))


def kafka_bootstrap(kafka: Any, cluster: Mapping[str, Any]) -> str:
    arn = cluster["ClusterArn"]
    with aws_errors(f"reading the bootstrap brokers of MSK cluster {arn}"):
        brokers = kafka.get_bootstrap_brokers(ClusterArn=arn).get("BootstrapBrokerStringSaslScram")
    if not brokers:
        raise InventoryError(
            f"MSK cluster {arn} has no SASL/SCRAM brokers, which the services log in to; "
            "wait until it is ACTIVE, or run `pulumi up`"
        )
    return str(brokers)


def replication_factor(kafka: Any, cluster: Mapping[str, Any]) -> int:
    """`default.replication.factor` of the configuration the brokers run."""
    software = (cluster.get("Provisioned") or {}).get("CurrentBrokerSoftwareInfo") or {}
    arn, revision = software.get("ConfigurationArn"), software.get("ConfigurationRevision")
    if not arn or revision is None:
        raise InventoryError(
            f"MSK cluster {cluster['ClusterArn']} runs no custom configuration; the stack's "
            "sets the topics' replication factor (stacks/msk.py): run `pulumi up`"
        )
    with aws_errors(f"reading the configuration of MSK cluster {cluster['ClusterArn']}"):
        answer = kafka.describe_configuration_revision(Arn=arn, Revision=revision)
    text = bytes(answer.get("ServerProperties", b"")).decode()
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    value = props.get("default.replication.factor", "").strip()
    if not value.isdigit():
        raise InventoryError(
            f"MSK configuration {arn} revision {revision} sets no default.replication.factor; "
            "the stack's configuration does (stacks/msk.py): run `pulumi up`"
        )
    return int(value)


def redis_url(elasticache: Any, st: TaggedStack) -> str:
    doing = f"listing the ElastiCache replication groups in {st.region}"
    groups = [
        g
        for g in pages(elasticache, "describe_replication_groups", "ReplicationGroups", doing)
        if g.get("Status") != "deleting"  # a destroyed stack's, on its way out
    ]
    with aws_errors(doing):
        tags = [elasticache.list_tags_for_resource(ResourceName=g["ARN"]) for g in groups]
    ours = [g for g, t in zip(groups, tags, strict=True) if st.ours(tag_map(t["TagList"]))]
    group = st.one("ElastiCache replication group", ours, lambda g: str(g["ReplicationGroupId"]))
    endpoint = ((group.get("NodeGroups") or [{}])[0]).get("PrimaryEndpoint") or {}
    if not endpoint.get("Address"):
        raise InventoryError(
            f"ElastiCache group {group['ReplicationGroupId']} has no primary endpoint yet "
            f"(status {group.get('Status')}); wait until it is available"
        )
    tls = bool(group.get("TransitEncryptionEnabled"))
    return facts.redis_url(endpoint["Address"], int(endpoint["Port"]), tls)


def postgres(rds: Any, st: TaggedStack) -> tuple[str, str]:
    """The services' `postgres_url` and the ARN of the secret RDS keeps the master login in."""
    doing = f"listing the RDS instances in {st.region}"
    found = pages(rds, "describe_db_instances", "DBInstances", doing)
    ours = [
        db
        for db in found
        if db.get("DBInstanceStatus") != "deleting" and st.ours(tag_map(db.get("TagList")))
    ]
    db = st.one("RDS instance", ours, lambda d: str(d["DBInstanceIdentifier"]))
    endpoint = db.get("Endpoint") or {}
    secret = (db.get("MasterUserSecret") or {}).get("SecretArn")
    if not endpoint.get("Address") or not secret or not db.get("DBName"):
        raise InventoryError(
            f"RDS instance {db['DBInstanceIdentifier']} has no endpoint, database name or "
            f"master secret yet (status {db.get('DBInstanceStatus')}); wait until it is available"
        )
    return facts.postgres_url(endpoint["Address"], int(endpoint["Port"]), db["DBName"]), secret


def dashboard_url(elbv2: Any, st: TaggedStack) -> str:
    doing = f"listing the load balancers in {st.region}"
    albs = [
        lb
        for lb in pages(elbv2, "describe_load_balancers", "LoadBalancers", doing)
        if lb.get("Type") == "application"
    ]
    arns = [lb["LoadBalancerArn"] for lb in albs]
    tagged: set[str] = set()
    with aws_errors(doing):
        for start in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs at a time
            answer = elbv2.describe_tags(ResourceArns=arns[start : start + 20])
            tagged |= {
                d["ResourceArn"] for d in answer["TagDescriptions"] if st.ours(tag_map(d["Tags"]))
            }
    ours = [lb for lb in albs if lb["LoadBalancerArn"] in tagged]
    alb = st.one("application load balancer", ours, lambda lb: str(lb["LoadBalancerName"]))
    listeners = pages(
        elbv2, "describe_listeners", "Listeners", doing, LoadBalancerArn=alb["LoadBalancerArn"]
    )
    scheme = "https" if any(x.get("Protocol") == "HTTPS" for x in listeners) else "http"
    return f"{scheme}://{alb['DNSName']}"


def secret_arns(secretsmanager: Any, st: TaggedStack) -> dict[str, str]:
    """The stack's secrets by key: `adpulse-<stack>/<key>-<suffix>`, and the MSK SCRAM login."""
    filters = [
        {"Key": "tag-key", "Values": ["Stack"]},
        {"Key": "tag-value", "Values": [st.name]},
    ]
    doing = f"listing the secrets of stack {st.name} in {st.region}"
    prefix = f"{facts.name_prefix(st.name)}/"
    found: dict[str, list[str]] = {}
    for secret in pages(secretsmanager, "list_secrets", "SecretList", doing, Filters=filters):
        name = str(secret.get("Name", ""))
        if not st.ours(tag_map(secret.get("Tags"))):
            continue
        if name.startswith(facts.scram_secret_prefix(st.name)):
            key: str | None = KAFKA_SCRAM
        else:
            rest = name.removeprefix(prefix) if name.startswith(prefix) else ""
            key = next((k for k in facts.STACK_SECRETS if rest.startswith(f"{k}-")), None)
        if key is not None:
            found.setdefault(key, []).append(str(secret["ARN"]))
    return {
        key: st.one(f"secret {key}", found.get(key, []), str)
        for key in (*facts.STACK_SECRETS, KAFKA_SCRAM)
    }


def consumer_alarmed(cloudwatch: Any, st: TaggedStack) -> bool:
    """`cloudwatch_metrics`: on when an alarm watches the consumer's lag for this stack, which
    is why the stack turns the metrics on (stacks/alarms.py)."""
    doing = f"listing the CloudWatch alarms in {st.region}"
    for alarm in pages(cloudwatch, "describe_alarms", "MetricAlarms", doing):
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []}
        if (
            alarm.get("Namespace") == names.METRICS_NAMESPACE
            and alarm.get("MetricName") == names.CONSUMER_LAG_METRIC
            and dimensions.get(names.STACK_DIMENSION) == st.name
        ):
            return True
    return False
