"""checkov over the stack's Terraform plan JSON, offline, judged against the committed skips.

checkov runs from its own venv (scripts/checkov-deps.sh installs it into .tools/checkov): its
pins cannot share the project's. A failed check listed in stacks/checkov-skips.yaml, with its
reason, counts as suppressed; any other failure fails `adpulse stack check`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adpulse.errors import AdpulseError

ROOT = Path(__file__).resolve().parents[1]
SKIPS_FILE = ROOT / "stacks" / "checkov-skips.yaml"
TOOL = ROOT / ".tools" / "checkov" / "bin" / "checkov"
INSTALL = "bash scripts/checkov-deps.sh"


class CheckovError(AdpulseError):
    """checkov is missing, failed, or the skips file is malformed."""


@dataclass(frozen=True)
class Skip:
    reason: str
    resources: tuple[str, ...] = ()  # address patterns (fnmatch); empty: every resource

    def covers(self, address: str) -> bool:
        return not self.resources or any(fnmatch.fnmatch(address, p) for p in self.resources)


@dataclass(frozen=True)
class Result:
    check_id: str
    name: str
    resource: str  # Terraform address
    reason: str = ""  # the skip's reason, for a suppressed failure


@dataclass(frozen=True)
class CheckovReport:
    version: str
    resource_count: int
    passed: int
    failed: tuple[Result, ...]  # not covered by a skip: these fail the stack check
    suppressed: tuple[Result, ...]
    stale_skips: tuple[str, ...] = ()  # listed, but no such failure: remove them
    passed_ids: frozenset[str] = field(default_factory=frozenset)


def find_checkov() -> str:
    """The checkov executable: the project's tool venv first, then PATH."""
    if TOOL.exists():
        return str(TOOL)
    found = shutil.which("checkov")
    if found is None:
        raise CheckovError(f"checkov is not installed: run `{INSTALL}` (checkov 3.3.30)")
    return found


def load_skips(path: Path = SKIPS_FILE) -> dict[str, Skip]:
    """The committed skips: check ID -> reason and the resources it covers."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    skips = {}
    for check_id, entry in data.items():
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            raise CheckovError(f"{path}: {check_id} needs a `reason:` saying why it is accepted")
        skips[str(check_id)] = Skip(reason.strip(), tuple(entry.get("resources") or ()))
    return skips


def run_checkov(plan: Path, skips: dict[str, Skip] | None = None) -> CheckovReport:
    """Scan a plan JSON with every terraform_plan check, offline, and apply the skips."""
    skips = load_skips() if skips is None else skips
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    command = [find_checkov(), "-f", str(plan), "--framework", "terraform_plan"]
    command += ["--skip-download", "--output", "json", "--soft-fail"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise CheckovError(f"checkov failed on {plan}: {lines[-1]}")
    return judge_output(json.loads(done.stdout), skips, _version(done.stdout))


def _version(stdout: str) -> str:
    data = json.loads(stdout)
    summary = data.get("summary", {}) if isinstance(data, dict) else {}
    return str(summary.get("checkov_version", "?"))


def judge_output(data: Any, skips: dict[str, Skip], version: str = "?") -> CheckovReport:
    """Split checkov's JSON report into passed, suppressed and failed checks."""
    if isinstance(data, list):  # one report per framework; we ask for one
        data = data[0] if data else {}
    summary = data.get("summary") or {}
    if summary.get("parsing_errors"):
        raise CheckovError("checkov could not parse the plan JSON (parsing_errors in its report)")
    results = data.get("results") or {}
    failed: list[Result] = []
    suppressed: list[Result] = []
    for item in results.get("failed_checks") or []:
        check_id, address = item["check_id"], item["resource"]
        skip = skips.get(check_id)
        if skip is not None and skip.covers(address):
            suppressed.append(Result(check_id, item["check_name"], address, skip.reason))
        else:
            failed.append(Result(check_id, item["check_name"], address))
    used = {r.check_id for r in suppressed}
    passed_ids = frozenset(item["check_id"] for item in results.get("passed_checks") or [])
    return CheckovReport(
        version=version,
        resource_count=int(summary.get("resource_count", 0)),
        passed=int(summary.get("passed", 0)),
        failed=tuple(failed),
        suppressed=tuple(suppressed),
        stale_skips=tuple(sorted(set(skips) - used)),
        passed_ids=passed_ids,
    )
