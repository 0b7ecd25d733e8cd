"""Refresh the price catalogue from the AWS Price List: into a file (`refresh` + `write`), or for
one `cost report --live-prices` run (`live`), which falls back to the base catalogue when AWS
cannot be reached.

A refreshed price replaces the same key and region (cost.catalogue.merge) with source
aws-price-list-<date>; every other price keeps its own source and date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from adpulse.errors import AdpulseError
from cost import catalogue as cat
from cost.catalogue import Catalogue, Price
from cost.pricelist import fetch_prices, pricing_client, reason, refreshable, source

AWS_ERRORS = (BotoCoreError, ClientError, Boto3Error)
HEADER = """\
# adpulse price catalogue: every price with its unit, source and date (format: cost/catalogue.py).
# Written on {as_of} by `adpulse cost catalogue refresh`: prices whose source is
# aws-price-list-<date> were read from the AWS Price List Query API on that date; the others keep
# the source they had. Edit by hand only with a source (url and date) for each price.
"""


class RefreshError(AdpulseError):
    """The AWS Price List could not be read; the catalogue is unchanged."""


def aws_reason(exc: Exception) -> str:
    """A botocore/boto3 error in a few words: the AWS error code and message, or the cause."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__


def _split(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    wanted = list(dict.fromkeys(keys))
    return [k for k in wanted if refreshable(k)], [k for k in wanted if not refreshable(k)]


def _fetch(
    keys: list[str], regions: Iterable[str], client: Any, today: dt.date
) -> tuple[list[Price], list[str]]:
    prices: list[Price] = []
    problems: list[str] = []
    for region in dict.fromkeys(regions):
        got, trouble = fetch_prices(keys, region, client, today)
        prices.extend(got)
        problems.extend(trouble)
    return prices, problems


def refresh(
    regions: Iterable[str],
    keys: Iterable[str] | None = None,
    client: Any = None,
    base: Catalogue | None = None,
    today: dt.date | None = None,
) -> tuple[Catalogue, list[str]]:
    """`base` (the bundled catalogue if None) with today's AWS prices of `keys` in `regions`.

    `keys` defaults to every key of `base`. Returns the catalogue and a line per key that kept
    its old price and why. Raises RefreshError, changing nothing, if AWS cannot be reached.
    """
    base = base or cat.load()
    today = today or dt.date.today()
    asked, fixed = _split(keys if keys is not None else sorted({k for k, _ in base.prices}))
    problems = [f"{k}: kept the catalogue's price: {reason(k)}" for k in fixed]
    try:
        prices, trouble = _fetch(asked, regions, client or pricing_client(), today)
    except AWS_ERRORS as exc:
        raise RefreshError(
            f"cannot read the AWS Price List ({aws_reason(exc)}): it needs AWS credentials "
            "allowed pricing:GetProducts and a route to api.pricing.us-east-1.amazonaws.com; "
            "the catalogue was not changed"
        ) from None
    problems.extend(f"{line}; kept the catalogue's price" for line in trouble)
    if not prices:
        return base, problems
    src = source(today)
    return cat.merge(base, prices, {src.id: src}, today.isoformat(), "refreshed"), problems


def write(catalogue: Catalogue, path: Path) -> None:
    """Write `catalogue` as YAML with a header comment; checked by parsing it back first."""
    import yaml

    document = cat.to_document(catalogue)
    text = HEADER.format(as_of=catalogue.as_of) + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, width=100
    )
    cat.parse(yaml.safe_load(text), str(path))  # never write what `load` would refuse
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def live(
    keys: Iterable[str],
    region: str,
    base: Catalogue,
    client: Any = None,
    today: dt.date | None = None,
) -> tuple[Catalogue, list[str]]:
    """`base` with today's AWS prices of `keys` in `region`, for one report; never raises for AWS.

    On any botocore/boto3 error (no credentials, no network, access denied, throttling) it
    returns `base` itself and one warning saying so. Keys with no Price List query, or whose
    answer was unusable, keep their `base` price, each with a warning.
    """
    today = today or dt.date.today()
    asked, fixed = _split(keys)
    try:
        prices, trouble = _fetch(asked, [region], client or pricing_client(), today)
    except AWS_ERRORS as exc:
        return base, [
            f"live prices unavailable ({aws_reason(exc)}): using the {base.origin} catalogue "
            f"as of {base.as_of}"
        ]
    warnings = [f"{line}; using the {base.origin} price" for line in trouble]
    if fixed:
        warnings.append(
            f"no live price for {', '.join(fixed)} (no AWS Price List query): from the "
            f"{base.origin} catalogue as of {base.as_of}"
        )
    if not prices:
        return base, warnings
    src = source(today)
    return cat.merge(base, prices, {src.id: src}, today.isoformat(), "live"), warnings
