"""Policies on keys, secrets and what the stack tells the world: KMS, Secrets Manager,
stack outputs, resource inputs and tags."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from stacks.cloud_config import file_contents, unpack
from stacks.inventory import Inventory, Resource
from stacks.mocks import is_secret_marked, unwrap
from stacks.policy.base import Finding, customer_key, each, policy, require

KMS_KEY = "aws:kms/key:Key"
SECRETS_MANAGER = "aws:secretsmanager/secret:Secret"
AWS_PROVIDER = "pulumi:providers:aws"
# Tags every taggable resource carries, so two stacks in one account stay apart on the bill.
REQUIRED_TAGS = ("Project", "Stack")
_SECRET_NAME = re.compile(r"(password|secret|token|private_key)s?$")


@policy("kms-rotation", "Customer-managed KMS keys rotate yearly", (KMS_KEY,), ("CKV_AWS_7",))
def kms_rotation(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (KMS_KEY,),
        lambda s: s.get("enableKeyRotation") is True,
        "enableKeyRotation is not true",
    )


@policy(
    "secrets-kms",
    "Secrets Manager secrets are encrypted with the stack's KMS key",
    (SECRETS_MANAGER,),
    ("CKV_AWS_149",),
)
def secrets_kms(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (SECRETS_MANAGER,),
        lambda s: customer_key(s.get("kmsKeyId")),
        "no kmsKeyId: encrypted with the AWS-managed key, whose use cannot be revoked",
    )


def _leaks(text: str, inventory: Inventory) -> bool:
    return any(secret in text for secret in inventory.secret_values)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a value, keys included (searched as they are, not JSON-escaped)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@policy(
    "outputs-no-plain-secret",
    "No stack output holds a secret unless it is a Pulumi secret",
)
def plain_outputs(inventory: Inventory) -> Iterator[Finding]:
    for export in inventory.exports:
        if export.secret:
            continue
        if any(_leaks(text, inventory) for text in _strings(export.value)):
            yield Finding(f"output {export.name}", "holds a secret value in plain text")
        elif _SECRET_NAME.search(export.name):
            yield Finding(
                f"output {export.name}", "is named as a secret but is not a Pulumi secret"
            )


# Inputs AWS hands back in clear to anyone who may describe the resource or reach its instance
# metadata, whatever Pulumi's mark: `Output.all` over a password marks the whole user data
# secret, which hides it in the state but not on the instance. Their marked values are searched.
_READABLE_INPUTS: dict[str, frozenset[str]] = dict.fromkeys(
    ("aws:ec2/instance:Instance", "aws:ec2/launchTemplate:LaunchTemplate"),
    frozenset({"userData", "userDataBase64", "tags", "tagsAll"}),
)


def _decoded(text: str) -> str:
    """The text, followed by what it decodes to if it is base64 (gzipped or not), as
    `userDataBase64` and launch template user data are, and by every write_files entry of a
    #cloud-config among them, decoded as cloud-init decodes it: what lands on the instance."""
    readable = [text]
    try:
        readable.append(unpack(base64.b64decode(text, validate=True)))
    except (binascii.Error, ValueError):
        pass  # not base64, or a damaged gzip stream: the text as it is is what there is
    for document in list(readable):
        readable += [data.decode("utf-8", "replace") for data in file_contents(document)]
    return "\n".join(readable)


def _plain_leaks(value: Any, inventory: Inventory, readable: bool = False) -> bool:
    """Whether a secret appears in this input outside a secret mark (or anywhere, if the
    input is `readable` in clear regardless of the mark)."""
    if is_secret_marked(value):
        if not readable:
            return False
        value = unwrap(value)
    if isinstance(value, dict):
        return any(_plain_leaks(v, inventory, readable) for v in value.values())
    if isinstance(value, list):
        return any(_plain_leaks(v, inventory, readable) for v in value)
    return isinstance(value, str) and _leaks(_decoded(value) if readable else value, inventory)


@policy(
    "inputs-no-plain-secret",
    "Secret values reach resources only as Pulumi secrets (never in user data or tags)",
    # CKV_AWS_46 looks for AWS access keys in user data only, not for the stack's own secrets.
)
def plain_inputs(inventory: Inventory) -> Iterator[Finding]:
    for resource in inventory.resources:
        readable = _READABLE_INPUTS.get(resource.type, frozenset())
        for key, value in resource.inputs.items():
            if _plain_leaks(value, inventory, key in readable):
                yield Finding(resource.name, f"{key} holds a secret value in plain text")


def _default_tags(inventory: Inventory, resource: Resource) -> dict[str, Any]:
    """The tags the resource's AWS provider adds (its `defaultTags`)."""
    raw: Any = None
    if resource.provider:
        provider_id = resource.provider.rsplit("::", 1)[-1]
        for p, s in each(inventory, AWS_PROVIDER):
            if p.id == provider_id:
                raw = s.get("defaultTags")
    else:
        raw = inventory.config.get("aws:defaultTags")
    if isinstance(raw, str):
        raw = json.loads(raw) if raw else None
    tags = raw.get("tags") if isinstance(raw, dict) else None
    return dict(tags) if isinstance(tags, dict) else {}


@policy(
    "tags-everywhere",
    f"Every taggable resource carries {' and '.join(REQUIRED_TAGS)} tags naming this stack",
)
def tags(inventory: Inventory) -> Iterator[Finding]:
    want = {"Project": "adpulse", "Stack": inventory.stack}
    for resource in inventory.resources:
        if not resource.taggable or resource.type.startswith("pulumi:providers:"):
            continue
        effective = _default_tags(inventory, resource) | dict(resource.settings.get("tags") or {})
        wrong = [k for k in REQUIRED_TAGS if effective.get(k) != want[k]]
        if wrong:
            yield Finding(resource.name, f"tags {', '.join(wrong)} missing or not {want}")
