"""The mocked inventory as a Terraform plan JSON, so Terraform scanners (checkov) can read it.

pulumi-aws is bridged from the Terraform AWS provider: its types and arguments are Terraform's,
renamed. `aws:ec2/instance:Instance` is `aws_instance`, `metadataOptions.httpTokens` is
`metadata_options[0].http_tokens`, and list blocks Pulumi pluralised (`defaultActions`) are
Terraform's singular blocks (`default_action`). An input that holds another resource's computed
attribute (an id, an ARN) is unknown at plan time, as in a real first `terraform plan`: it is left
out of `values` and written as a reference in `configuration`, which is how checkov connects
resources (a VPC to its flow log, a bucket to its public access block).
"""

from __future__ import annotations

import re
from typing import Any

from stacks.inventory import Inventory, Resource
from stacks.mocks import is_secret_marked

FORMAT_VERSION = "1.2"
# The Terraform version the plan claims; checkov only requires the field to exist.
TERRAFORM_VERSION = "1.9.8"
SENSITIVE = "(sensitive)"

# Types whose Terraform name does not follow the rules in terraform_type().
_TYPES = {
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/optionGroup:OptionGroup": "aws_db_option_group",
}
# Terraform list blocks whose Pulumi name is a plural (only applied to lists of objects).
_BLOCKS = {
    "actions": "action",
    "conditions": "condition",
    "defaultActions": "default_action",
    "ebsBlockDevices": "ebs_block_device",
    "ephemeralBlockDevices": "ephemeral_block_device",
    "metricQueries": "metric_query",
    "noncurrentVersionTransitions": "noncurrent_version_transition",
    "routes": "route",
    "rules": "rule",
    "transitions": "transition",
    "vpcs": "vpc",
}
# Arguments that are maps (user keys, kept as they are), not blocks.
_MAPS = {"tags", "tagsAll", "defaultTags", "dimensions", "variables", "environment"}
_MIN_REFERENCE_LEN = 6


def snake(name: str) -> str:
    """`httpPutResponseHopLimit` -> `http_put_response_hop_limit`; digits stay with the word."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_type(pulumi_type: str) -> str | None:
    """The Terraform resource type of a bridged Pulumi type; None for Pulumi's own (components)."""
    if pulumi_type in _TYPES:
        return _TYPES[pulumi_type]
    provider, _, rest = pulumi_type.partition(":")
    module, _, cls = rest.partition(":")
    if not cls or provider in {"pulumi", "adpulse"}:
        return None
    section = module.split("/")[0]
    base = snake(cls)
    if provider == "aws" and section == "s3":
        base = re.sub(r"_?v2$", "", base)  # BucketV2 and friends are aliases of aws_s3_bucket...
    base = base.removeprefix(f"{provider}_")  # random:index/randomPassword -> random_password
    if section in {"index", "ec2"}:  # ec2 is Terraform's unprefixed core: aws_instance, aws_vpc
        return f"{provider}_{base}"
    return f"{provider}_{section}_{base}"


def _address(resource: Resource) -> str:
    return f"{terraform_type(resource.type)}.{_tf_name(resource.name)}"


def _tf_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _computed(resource: Resource) -> dict[str, str]:
    """Values only known after apply -> the attribute they come from."""
    found = {resource.id: "id"}
    for key, value in resource.outputs.items():
        if isinstance(value, str) and len(value) >= _MIN_REFERENCE_LEN:
            if key not in resource.inputs:
                found.setdefault(value, snake(key))
    return found


class _Converter:
    """Turns one resource's inputs into Terraform values, expressions and sensitivity marks."""

    def __init__(self, references: dict[str, tuple[str, str]]) -> None:
        self.references = references

    def _reference(self, value: Any) -> list[str] | None:
        """The references a value is made of, or None if it holds a known value."""
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(i, str) and i in self.references for i in items):
            return None
        refs: list[str] = []
        for item in items:
            address, attribute = self.references[item]
            refs += [f"{address}.{attribute}", address]
        return refs

    def block(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """(values, expressions, sensitive marks) of one block of arguments."""
        values: dict[str, Any] = {}
        expressions: dict[str, Any] = {}
        sensitive: dict[str, Any] = {}
        for key, raw in inputs.items():
            if key.startswith("__"):
                continue
            if is_secret_marked(raw):
                values[snake(key)] = SENSITIVE
                sensitive[snake(key)] = True
                continue
            refs = self._reference(raw)
            if refs is not None:
                expressions[snake(key)] = {"references": refs}
                continue
            if key in _MAPS and isinstance(raw, dict):
                values[snake(key)] = {k: _scalar(v) for k, v in raw.items()}
                continue
            blocks = [raw] if isinstance(raw, dict) else raw
            if isinstance(blocks, list) and blocks and all(isinstance(b, dict) for b in blocks):
                name = _BLOCKS.get(key, snake(key))
                converted = [self.block(b) for b in blocks]
                values[name] = [c[0] for c in converted]
                if any(c[1] for c in converted):
                    expressions[name] = [c[1] for c in converted]
                if any(c[2] for c in converted):
                    sensitive[name] = [c[2] for c in converted]
                continue
            values[snake(key)] = _scalar(raw)
        return values, expressions, sensitive


def _scalar(value: Any) -> Any:
    """Pulumi's mocks send every number as a float; Terraform writes whole numbers as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    if is_secret_marked(value):
        return SENSITIVE
    return value


def to_plan(inventory: Inventory) -> dict[str, Any]:
    """A Terraform plan JSON (format 1.2) creating every cloud resource of the inventory."""
    resources = [r for r in inventory.resources if terraform_type(r.type) is not None]
    addresses = [_address(r) for r in resources]
    duplicated = {a for a in addresses if addresses.count(a) > 1}
    if duplicated:
        raise ValueError(f"resources map to the same Terraform address: {sorted(duplicated)}")
    references: dict[str, tuple[str, str]] = {}
    for resource, address in zip(resources, addresses, strict=True):
        for value, attribute in _computed(resource).items():
            references.setdefault(value, (address, attribute))
    converter = _Converter(references)
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    configured: list[dict[str, Any]] = []
    for resource, address in zip(resources, addresses, strict=True):
        tf_type = terraform_type(resource.type)
        values, expressions, sensitive = converter.block(resource.inputs)
        provider = resource.type.split(":")[0]
        head = {"address": address, "mode": "managed", "type": tf_type}
        head["name"] = _tf_name(resource.name)
        planned.append(
            {**head, "provider_name": f"registry.terraform.io/hashicorp/{provider}"}
            | {"schema_version": 0, "values": values, "sensitive_values": sensitive}
        )
        changes.append(
            {
                **head,
                "provider_name": f"registry.terraform.io/hashicorp/{provider}",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": {key: True for key in expressions},
                    "before_sensitive": False,
                    "after_sensitive": sensitive,
                },
            }
        )
        configured.append({**head, "provider_config_key": provider, "expressions": expressions})
    return {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": configured}},
    }
