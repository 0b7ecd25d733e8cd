"""Default tags on every taggable AWS resource of the stack, set by one stack transformation.

A transformation rather than the provider's `defaultTags`: the tags then sit in each
resource's own inputs, where the tests and `adpulse stack check` see them, and no resource can
be created on a provider that lacks them. A resource's own tags (Name, Role) are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws


def is_taggable(cls: type) -> bool:
    """Whether an AWS resource class takes a `tags` map (the ones provider default tags cover,
    which report `tags_all`)."""
    return (
        issubclass(cls, pulumi.CustomResource)
        and cls.__module__.startswith("pulumi_aws.")
        and isinstance(getattr(cls, "tags", None), property)
        and isinstance(getattr(cls, "tags_all", None), property)
    )


def _merged(defaults: Mapping[str, str], own: Any) -> Any:
    if isinstance(own, pulumi.Output):
        return own.apply(lambda tags: {**defaults, **(tags or {})})
    return {**defaults, **(own or {})}


def _tagged_root(defaults: Mapping[str, str], root: Any) -> Any:
    """The instance's root volume with the default tags: EC2 tags only the instance itself.
    Not `volume_tags`: it would fight the tags of the separately managed data volumes."""
    if root is None:
        return aws.ec2.InstanceRootBlockDeviceArgs(tags=dict(defaults))
    if isinstance(root, aws.ec2.InstanceRootBlockDeviceArgs):
        tagged = copy.copy(root)
        pulumi.set(tagged, "tags", _merged(defaults, root.tags))
        return tagged
    if isinstance(root, Mapping):
        return {**root, "tags": _merged(defaults, root.get("tags"))}
    raise TypeError(f"root_block_device of type {type(root).__name__}: give it as Args or a dict")


def tagging(
    defaults: Mapping[str, str],
) -> pulumi.ResourceTransformation:
    """The transformation: add `defaults` under the resource's own tags."""
    frozen = dict(defaults)

    def transform(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        if not is_taggable(type(args.resource)):
            return None
        props = {**args.props, "tags": _merged(frozen, args.props.get("tags"))}
        if isinstance(args.resource, aws.ec2.Instance):
            props["root_block_device"] = _tagged_root(frozen, props.get("root_block_device"))
        return pulumi.ResourceTransformationResult(props=props, opts=args.opts)

    return transform


def register_default_tags(defaults: Mapping[str, str]) -> None:
    """Tag every AWS resource created after this call; call it before the first one."""
    pulumi.runtime.register_stack_transformation(tagging(defaults))
