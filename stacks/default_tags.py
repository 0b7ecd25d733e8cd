"""Default tags on every taggable AWS resource of the stack, set by one stack transformation.

A transformation rather than the provider's `defaultTags`: the tags then sit in each
resource's own inputs, where the tests and `adpulse stack check` see them, and no resource can
be created on a provider that lacks them. A resource's own tags (Name, Role) are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi


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
        return pulumi.ResourceTransformationResult(props=props, opts=args.opts)

    return transform


def register_default_tags(defaults: Mapping[str, str]) -> None:
    """Tag every AWS resource created after this call; call it before the first one."""
    pulumi.runtime.register_stack_transformation(tagging(defaults))
