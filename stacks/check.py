"""`adpulse stack check`: the mocked inventory, every policy's verdict and checkov's.

`check_stack()` does the work; `as_json()` and `as_text()` render its report. Secret values
(the placeholders `stack check` substitutes, or anything the program marks secret) are masked
in both and in the plan file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.checkov_scan import CheckovReport, run_checkov
from stacks.inventory import ROOT, Inventory, Resource, collect
from stacks.policy import Verdict, judge
from stacks.terraform_plan import SENSITIVE, to_plan

# What the inventory shows of each type: (label, path into its settings).
_KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "aws:ec2/instance:Instance": (
        "instanceType",
        "metadataOptions.httpTokens",
        "rootBlockDevice.encrypted",
        "associatePublicIpAddress",
    ),
    "aws:ebs/volume:Volume": ("type", "size", "iops", "throughput", "encrypted"),
    "aws:msk/cluster:Cluster": (
        "kafkaVersion",
        "numberOfBrokerNodes",
        "brokerNodeGroupInfo.instanceType",
        "encryptionInfo.encryptionInTransit.clientBroker",
        "clientAuthentication",
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "engineVersion",
        "nodeType",
        "numCacheClusters",
        "atRestEncryptionEnabled",
        "transitEncryptionEnabled",
        "snapshotRetentionLimit",
    ),
    "aws:rds/instance:Instance": (
        "engineVersion",
        "instanceClass",
        "allocatedStorage",
        "multiAz",
        "storageEncrypted",
        "publiclyAccessible",
        "backupRetentionPeriod",
        "deletionProtection",
    ),
    "aws:lb/loadBalancer:LoadBalancer": ("internal", "dropInvalidHeaderFields"),
    "aws:lb/listener:Listener": ("port", "protocol", "sslPolicy"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "fromPort",
        "toPort",
        "cidrIpv4",
    ),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/flowLog:FlowLog": ("trafficType", "logDestinationType"),
    "aws:kms/key:Key": ("enableKeyRotation",),
    "aws:secretsmanager/secret:Secret": ("name", "recoveryWindowInDays"),
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "threshold"),
}


@dataclass(frozen=True)
class StackReport:
    inventory: Inventory
    verdicts: list[Verdict]
    plan: Path
    checkov: CheckovReport | None  # None: not run (--no-checkov)

    @property
    def failed_policies(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failed_policies and not (self.checkov and self.checkov.failed)


def default_plan_path(stack: str) -> Path:
    return ROOT / "out" / "stack-check" / f"{stack}-plan.json"


def mask(text: str, inventory: Inventory) -> str:
    """The text with every secret value replaced by `(sensitive)`."""
    for secret in sorted(inventory.secret_values, key=len, reverse=True):
        text = text.replace(secret, SENSITIVE)
        text = text.replace(json.dumps(secret)[1:-1], SENSITIVE)
    return text


def check_stack(
    stack: str, plan: Path | None = None, scan: bool = True, config_dir: Path = ROOT
) -> StackReport:
    """Run the program under mocks with `config_dir/Pulumi.<stack>.yaml`, judge it, write the
    plan and scan it with checkov (unless `scan` is false)."""
    inventory = collect(stack, config_dir)
    return check_inventory(inventory, plan or default_plan_path(stack), scan)


def check_inventory(inventory: Inventory, plan: Path, scan: bool = True) -> StackReport:
    """Judge an inventory; write its Terraform plan to `plan` and, if `scan`, run checkov."""
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text(mask(json.dumps(to_plan(inventory), indent=1), inventory))
    report = run_checkov(plan) if scan else None
    return StackReport(inventory, judge(inventory), plan, report)


def _setting(settings: dict[str, Any], path: str) -> Any:
    value: Any = settings
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def key_settings(resource: Resource) -> dict[str, Any]:
    """The settings the inventory shows for this resource (those that are set)."""
    found = {p: _setting(resource.settings, p) for p in _KEY_SETTINGS.get(resource.type, ())}
    return {
        p: int(v) if isinstance(v, float) and v.is_integer() else v
        for p, v in found.items()
        if v is not None
    }


def as_json(report: StackReport) -> dict[str, Any]:
    """The report for scripts; secret values masked."""
    inventory = report.inventory
    checkov = report.checkov
    payload = {
        "stack": inventory.stack,
        "ok": report.ok,
        "notes": list(inventory.notes),
        "inventory": [
            {"type": r.type, "name": r.name, "settings": key_settings(r)}
            for r in inventory.cloud_resources
        ],
        "policies": [
            {
                "id": v.policy.id,
                "title": v.policy.title,
                "checkov": list(v.policy.checkov),
                "status": v.status,
                "checked": v.checked,
                "findings": [{"resource": f.resource, "problem": f.problem} for f in v.findings],
            }
            for v in report.verdicts
        ],
        "plan": str(report.plan),
        "checkov": None
        if checkov is None
        else {
            "version": checkov.version,
            "resource_count": checkov.resource_count,
            "passed": checkov.passed,
            "failed": [vars(r) for r in checkov.failed],
            "suppressed": [vars(r) for r in checkov.suppressed],
            "stale_skips": list(checkov.stale_skips),
        },
    }
    return dict(json.loads(mask(json.dumps(payload, default=str), inventory)))


def as_text(report: StackReport) -> list[str]:
    """The report for people: inventory, verdicts, checkov, and the result line."""
    inventory = report.inventory
    resources = inventory.cloud_resources
    lines = [f"stack {inventory.stack}: {len(resources)} resources (the program under mocks)"]
    lines += [f"note: {note}" for note in inventory.notes]
    lines.append("inventory:")
    for r in resources:
        shown = " ".join(f"{k}={v}" for k, v in key_settings(r).items())
        lines.append(f"  {r.type:<58} {r.name:<36} {shown}".rstrip())
    counts = {s: sum(v.status == s for v in report.verdicts) for s in ("pass", "fail", "n/a")}
    lines.append(
        f"policies: {len(report.verdicts)}, {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['n/a']} n/a (no resource of their type)"
    )
    for v in report.verdicts:
        ids = f" [{', '.join(v.policy.checkov)}]" if v.policy.checkov else ""
        lines.append(f"  {v.status.upper():<4} {v.policy.id:<28} {v.policy.title}{ids}")
        lines += [f"       {f.resource}: {f.problem}" for f in v.findings]
    lines.append(f"plan: {report.plan}")
    checkov = report.checkov
    if checkov is None:
        lines.append("checkov: not run (--no-checkov)")
    else:
        lines.append(
            f"checkov {checkov.version}: {checkov.resource_count} resources, "
            f"{checkov.passed} passed, {len(checkov.failed)} failed, "
            f"{len(checkov.suppressed)} suppressed (stacks/checkov-skips.yaml)"
        )
        lines += [f"  FAILED {r.check_id} {r.resource}: {r.name}" for r in checkov.failed]
        lines += [
            f"  stale skip {s}: no such failure any more; delete it from stacks/checkov-skips.yaml"
            for s in checkov.stale_skips
        ]
    failed_checks = len(checkov.failed) if checkov else 0
    verdict = "ok" if report.ok else "FAIL"
    lines.append(
        f"result: {verdict} ({len(report.failed_policies)} policies failed, "
        f"{failed_checks} unsuppressed checkov failures)"
    )
    return [mask(line, inventory) for line in lines]
