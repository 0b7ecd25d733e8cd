"""The stack's physical-name prefix and its default tags."""

from __future__ import annotations

import re

import pulumi

from stacks.config.validate import PROJECT, StackConfigError, key

# Physical names are `adpulse-<stack>-...`; RDS allows 63 characters with a 26-character suffix.
_STACK_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_STACK_NAME_MAX = 20
# Set on every taggable resource by stacks.default_tags; adpulse:tags may add others.
_OWN_TAGS = ("Project", "Stack", "ManagedBy")


def name_prefix(stack: str) -> str:
    """`adpulse-<stack>`, or StackConfigError if the stack name cannot prefix AWS names."""
    if len(stack) > _STACK_NAME_MAX or not _STACK_NAME.fullmatch(stack):
        raise StackConfigError(
            f"stack name {stack!r} cannot prefix AWS names: allowed are 1..{_STACK_NAME_MAX} "
            "lowercase letters, digits and single hyphens, starting with a letter "
            "(e.g. `pulumi stack init dev`)"
        )
    return f"{PROJECT}-{stack}"


def tags(cfg: pulumi.Config, stack: str) -> dict[str, str]:
    """Project, Stack and ManagedBy, plus adpulse:tags (which may not override them)."""
    extra = cfg.get_object("tags") or {}
    allowed = "allowed: a map of strings, keys up to 128 and values up to 256 characters"
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise StackConfigError(f"config {key('tags')} must be a map of strings; {allowed}")
    for tag, value in extra.items():
        if tag in _OWN_TAGS or tag.lower().startswith("aws:"):
            raise StackConfigError(
                f"config {key('tags')} sets {tag!r}, which the stack sets itself or AWS "
                f"reserves; allowed: any key but {', '.join(_OWN_TAGS)} and aws:*"
            )
        if not 0 < len(tag) <= 128 or len(value) > 256:
            raise StackConfigError(f"config {key('tags')} has {tag!r}; {allowed}")
    return {"Project": PROJECT, "Stack": stack, "ManagedBy": "pulumi", **extra}
