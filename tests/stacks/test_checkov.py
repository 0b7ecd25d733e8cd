"""checkov, the real one (scripts/checkov-deps.sh), over the prod stack's Terraform plan JSON.

Both ways again: on the prod plan every failed check is listed with its reason in
stacks/checkov-skips.yaml, and on the plan of the prod inventory with every policy's fault
injected, checkov fails the checks each policy is mapped to, on the resource the fault is in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stacks.checkov_scan import CheckovError, CheckovReport, load_skips, run_checkov
from stacks.inventory import Inventory
from stacks.policy import POLICIES, Policy
from stacks.terraform_plan import terraform_type, to_plan
from tests.stacks.test_policies import FAULTS

MAPPED = [p for p in POLICIES if p.checkov]


def _scan(inventory: Inventory, path: Path) -> tuple[dict[str, object], CheckovReport]:
    plan = to_plan(inventory)
    path.write_text(json.dumps(plan))
    return plan, run_checkov(path)


@pytest.fixture(scope="module")
def prod_scan(
    prod_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, object], CheckovReport]:
    return _scan(prod_inventory, tmp_path_factory.mktemp("checkov") / "prod-plan.json")


@pytest.fixture(scope="module")
def faulty_scan(
    prod_inventory: Inventory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], CheckovReport]:
    """Every checkov-mapped policy's fault at once (they touch different settings), one scan:
    policy id -> Terraform address of the faulty resource, and checkov's report."""
    inventory = prod_inventory
    culprits: dict[str, str] = {}
    for p in MAPPED:
        inventory, culprit = FAULTS[p.id](inventory)
        culprits[p.id] = culprit
    addresses = {
        r.name: f"{terraform_type(r.type)}.{r.name}"
        for r in prod_inventory.resources
        if terraform_type(r.type)
    }
    _, report = _scan(inventory, tmp_path_factory.mktemp("checkov") / "faulty-plan.json")
    return {pid: addresses[name] for pid, name in culprits.items()}, report


def _resources(plan: dict[str, object]) -> list[dict[str, object]]:
    return plan["planned_values"]["root_module"]["resources"]  # type: ignore[index, no-any-return]


def test_checkov_read_every_resource_of_the_plan(
    prod_scan: tuple[dict[str, object], CheckovReport], prod_inventory: Inventory
) -> None:
    plan, report = prod_scan
    cloud = [r for r in prod_inventory.resources if terraform_type(r.type)]
    assert report.resource_count == len(_resources(plan)) == len(cloud)
    assert report.version == "3.3.30"
    # Alarms, associations and pulumi-random/tls resources have no checks, the data stores and
    # hosts many; a plan checkov misread would pass almost none.
    assert report.passed > report.resource_count


def test_every_prod_failure_is_suppressed_with_its_reason(
    prod_scan: tuple[dict[str, object], CheckovReport],
) -> None:
    _, report = prod_scan
    unexplained = [f"{r.check_id} {r.resource}: {r.name}" for r in report.failed]
    assert unexplained == [], (
        f"fix these or list them with a reason in stacks/checkov-skips.yaml: {unexplained}"
    )
    assert report.suppressed and all(r.reason for r in report.suppressed)


def test_no_stale_skip(prod_scan: tuple[dict[str, object], CheckovReport]) -> None:
    _, report = prod_scan
    assert report.stale_skips == (), (
        f"{report.stale_skips} no longer fail on the prod plan: delete them from "
        "stacks/checkov-skips.yaml"
    )


@pytest.mark.parametrize("policy", MAPPED, ids=lambda p: p.id)
def test_checkov_agrees_with_the_policy_both_ways(
    policy: Policy,
    prod_scan: tuple[dict[str, object], CheckovReport],
    faulty_scan: tuple[dict[str, str], CheckovReport],
) -> None:
    _, prod = prod_scan
    culprits, faulty = faulty_scan

    def failing(report: CheckovReport) -> Iterator[tuple[str, str]]:
        for r in (*report.failed, *report.suppressed):
            yield r.check_id, r.resource

    on_prod = {cid for cid, _ in failing(prod)} & set(policy.checkov)
    assert not on_prod, f"checkov fails {on_prod} on prod, which {policy.id} passes"
    caught = {cid for cid, address in failing(faulty) if address == culprits[policy.id]}
    assert caught & set(policy.checkov), (
        f"{policy.id}'s fault in {culprits[policy.id]} tripped none of {policy.checkov} "
        f"(it tripped {sorted(caught)}): the mapping or the plan's values are wrong"
    )


def test_a_skip_needs_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "skips.yaml"
    path.write_text("CKV_AWS_1:\n  resources: [aws_instance.*]\n")
    with pytest.raises(CheckovError, match="CKV_AWS_1 needs a `reason:`"):
        load_skips(path)
    assert all(skip.reason for skip in load_skips().values())
