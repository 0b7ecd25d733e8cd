"""boto3 sessions for one region, and botocore's failures as one line that says what to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deploy.inventory import InventoryError

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def session_for(region: str, session: Any = None) -> Any:
    """`session`, or a new boto3 session (the usual credential chain) in `region`."""
    if session is not None:
        return session
    import boto3

    return boto3.Session(region_name=region)


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn botocore's exceptions into InventoryError: `doing`, what AWS said, and the fix.

    AWS's messages name resources and actions, never a secret value, so they are kept.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise InventoryError(
            f"{doing}: no AWS credentials found; set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY) to an identity of the stack's account"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        message = " ".join(str(error.get("Message", "")).split())
        fix = (
            "; the deploy's AWS identity needs this permission (stacks/README.md)"
            if code in _DENIED
            else ""
        )
        raise InventoryError(f"{doing}: AWS answered {code}: {message}{fix}") from None
    except BotoCoreError as exc:
        raise InventoryError(f"{doing}: {' '.join(str(exc).split())}") from None
