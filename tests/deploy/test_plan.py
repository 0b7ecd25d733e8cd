"""deploy.plan: what changes on a host, and the layout rules it rests on (deploy.layout)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from deploy import layout
from deploy.host_step import Content
from deploy.inventory import load_outputs_file
from deploy.layout import ReleaseError, keep, release_of, release_version
from deploy.plan import FileState, HostState, compute_plan, describe, file_state
from deploy.rollout import desired_contents, desired_states
from deploy.units import render_env_files, render_units

OLD = "0123456789ab"
NEW = "fedcba987654"
UNITS = tuple(layout.unit_name(s) for s in layout.SERVICES)
PLAIN = {"ADPULSE_KAFKA_BOOTSTRAP": "b-1.example:9096", "ADPULSE_API_PORT": "8000"}
SECRET = {"api": {"ADPULSE_CLICKHOUSE_API_PASSWORD": "fixture-api-password"}}


def desired(plain: dict[str, str] = PLAIN, api_port: int = 8000) -> dict[str, FileState]:
    """What the deploy asks for of these units and env files (as `desired_contents` builds)."""
    files = {
        path: Content(text.encode(), layout.UNIT_MODE)
        for path, text in render_units(api_port, 3000).items()
    }
    for path, (text, mode) in render_env_files(plain, SECRET).items():
        files[path] = Content(text.encode(), mode)
    return desired_states(files)


def host_as(files: dict[str, FileState], release: str | None = OLD) -> HostState:
    """A host that has `files` and runs `release` in every unit."""
    return HostState(dict(files), release, {unit: release for unit in UNITS})


def restarted(plan: object) -> set[str]:
    return {r.unit for r in plan.restarts}  # type: ignore[attr-defined]


def test_identical_host_gets_an_empty_plan() -> None:
    want = desired()
    plan = compute_plan(want, host_as(want, NEW), NEW)
    assert plan.empty
    assert (plan.writes, plan.restarts, plan.switch, plan.daemon_reload) == ((), (), False, False)
    assert describe(plan) == [
        f"nothing to do: release {NEW} is running and every file is as wanted"
    ]


def test_one_secret_env_change_restarts_only_its_unit() -> None:
    want = desired()
    host = host_as(want, NEW)
    path = str(layout.service_env("api"))
    changed = dict(want)
    changed[path] = dataclasses.replace(want[path], sha256="0" * 64)
    plan = compute_plan(want, dataclasses.replace(host, files=changed), NEW)
    assert [w.path for w in plan.writes] == [path]
    assert restarted(plan) == {"adpulse-api.service"}
    assert not plan.daemon_reload and not plan.switch
    assert describe(plan) == [
        f"write {path} (content changed)",
        f"restart adpulse-api.service: environment file {path} content changed",
    ]


def test_a_common_setting_change_restarts_every_unit() -> None:
    host = host_as(desired(), NEW)
    plan = compute_plan(desired({**PLAIN, "ADPULSE_LOG_LEVEL": "DEBUG"}), host, NEW)
    assert [w.path for w in plan.writes] == [str(layout.COMMON_ENV)]
    assert restarted(plan) == set(UNITS)


def test_a_unit_file_change_reloads_systemd_and_restarts_that_unit() -> None:
    host = host_as(desired(api_port=8000), NEW)
    plan = compute_plan(desired(api_port=8001), host, NEW)
    # The API's port changed, and the dashboard's unit names the API's URL.
    assert {w.path for w in plan.writes} == {
        str(layout.unit_path("api")),
        str(layout.unit_path("dashboard")),
    }
    assert plan.daemon_reload
    assert restarted(plan) == {"adpulse-api.service", "adpulse-dashboard.service"}


def test_a_new_release_switches_and_restarts_every_unit_without_writing() -> None:
    want = desired()
    plan = compute_plan(want, host_as(want, OLD), NEW)
    assert plan.switch and plan.switch_from == OLD
    assert plan.writes == ()
    assert restarted(plan) == set(UNITS)
    assert describe(plan)[0] == f"switch {layout.CURRENT} from {OLD} to release {NEW}"
    assert all(r.reasons == (f"runs release {OLD}, not {NEW}",) for r in plan.restarts)


def test_a_fresh_host_gets_everything() -> None:
    want = desired()
    plan = compute_plan(want, HostState({}, None, {}), NEW)
    assert {w.path for w in plan.writes} == set(want)
    assert all(w.reasons == ("new",) for w in plan.writes)
    assert plan.switch and plan.switch_from is None and plan.daemon_reload
    assert restarted(plan) == set(UNITS)
    assert (
        describe(plan)[0] == f"switch {layout.CURRENT} from nothing (first deploy) to release {NEW}"
    )


def test_a_unit_left_on_the_old_release_restarts_though_current_moved() -> None:
    """A deploy that stopped after the switch: `current` is new, one unit still runs the old."""
    want = desired()
    host = HostState(dict(want), NEW, {**{u: NEW for u in UNITS}, "adpulse-consumer.service": OLD})
    plan = compute_plan(want, host, NEW)
    assert not plan.switch
    assert restarted(plan) == {"adpulse-consumer.service"}


def test_a_stopped_unit_is_started() -> None:
    want = desired()
    host = HostState(dict(want), NEW, {**{u: NEW for u in UNITS}, "adpulse-api.service": None})
    assert [(r.unit, r.reasons) for r in compute_plan(want, host, NEW).restarts] == [
        ("adpulse-api.service", ("not running",))
    ]


def test_a_wrong_mode_or_owner_is_repaired_without_a_restart() -> None:
    want = desired()
    path = str(layout.service_env("api"))
    loose = dict(want)
    loose[path] = dataclasses.replace(want[path], mode=0o644, owner="adpulse:adpulse")
    plan = compute_plan(want, host_as(loose, NEW), NEW)
    assert [(w.path, w.reasons, w.content_changed) for w in plan.writes] == [
        (path, ("mode 0644 -> 0600", "owner adpulse:adpulse -> root:root"), False)
    ]
    assert plan.restarts == ()


def test_desired_files_are_root_owned_with_secret_files_0600() -> None:
    want = desired()
    assert {s.owner for s in want.values()} == {"root:root"}
    assert want[str(layout.COMMON_ENV)].mode == 0o644
    for service in layout.SERVICES:
        assert want[str(layout.service_env(service))].mode == 0o600
        assert want[str(layout.unit_path(service))].mode == 0o644


def test_the_deploy_s_desired_states_are_the_bytes_modes_and_owners_it_writes() -> None:
    """`rollout.desired_states` of the stack's files: the checksum of the bytes
    `host_step.apply` writes, with their mode and owner (root's; secret env files 0600)."""
    fixtures = Path(__file__).parent / "fixtures"
    secrets = json.loads((fixtures / "secrets.json").read_text())
    inv = load_outputs_file(fixtures / "outputs-prod.json", "prod")
    contents = desired_contents(dataclasses.replace(inv, secrets=secrets))
    states = desired_states(contents)
    assert {s.owner for s in states.values()} == {"root:root"}
    for service in layout.SERVICES:
        assert states[str(layout.service_env(service))].mode == 0o600
        assert states[str(layout.unit_path(service))].mode == layout.UNIT_MODE
    assert {str(layout.service_env(s)) for s in layout.SERVICES} <= set(states)


def test_describe_never_shows_checksums_or_values() -> None:
    want = desired()
    plan = compute_plan(want, HostState({}, None, {}), NEW)
    text = "\n".join(describe(plan))
    for state in want.values():
        assert state.sha256 not in text
    assert "fixture-api-password" not in text


def test_plan_refuses_a_version_that_is_not_a_release_name() -> None:
    with pytest.raises(ReleaseError, match="not a release name"):
        compute_plan({}, HostState({}, None, {}), "../../etc")


# deploy.layout


def test_release_version_is_the_short_commit_and_marks_a_dirty_tree() -> None:
    commit = "A1B2C3D4E5F60718293a4b5c6d7e8f9012345678"
    assert release_version(commit, dirty=False) == "a1b2c3d4e5f6"
    assert release_version(commit, dirty=True) == "a1b2c3d4e5f6-dirty"
    assert (
        release_version(commit, True, build_digest="DEADBEEF0011") == "a1b2c3d4e5f6-dirty-deadbeef"
    )
    for made in ("a1b2c3d4e5f6", "a1b2c3d4e5f6-dirty", "a1b2c3d4e5f6-dirty-deadbeef"):
        assert layout.is_version(made)


@pytest.mark.parametrize("commit", ["", "HEAD", "a1b2c3d", "a1b2c3d4e5f6/../x", "g" * 40])
def test_release_version_refuses_what_is_not_a_commit(commit: str) -> None:
    with pytest.raises(ReleaseError, match="git rev-parse HEAD"):
        release_version(commit, dirty=False)


def test_keep_deletes_the_oldest_beyond_five() -> None:
    releases = [f"{i:012x}" for i in range(1, 9)]  # oldest first
    assert keep(releases, current=releases[-1]) == releases[:3]


def test_keep_never_deletes_current_nor_the_one_before_after_a_rollback() -> None:
    releases = [f"{i:012x}" for i in range(1, 9)]
    # Rolled back to the second release: it and the first stay, the newest five stay too.
    assert keep(releases, current=releases[1], n=5) == [releases[2]]
    assert keep(releases, current=releases[1], n=1) == releases[2:7]


def test_keep_leaves_names_it_did_not_make() -> None:
    releases = ["000000000001", "000000000002.partial", "lost+found", "000000000003"]
    assert keep(releases, current="000000000003", n=1) == []
    assert keep(["000000000001", "000000000002", "000000000003", "x"], "000000000003", 1) == [
        "000000000001"
    ]


def test_keep_refuses_when_current_is_unknown() -> None:
    with pytest.raises(ReleaseError, match="repair the link"):
        keep(["000000000001"], current="000000000002")
    with pytest.raises(ReleaseError, match="at least 1"):
        keep(["000000000001"], current="000000000001", n=0)


def test_release_of_a_resolved_working_directory() -> None:
    assert release_of(f"/opt/adpulse/releases/{NEW}") == NEW
    assert release_of(f"/opt/adpulse/releases/{NEW}/dashboard") == NEW
    assert release_of("/opt/adpulse/current") is None
    assert release_of("/opt/adpulse/releases/not-a-release/x") is None
    assert release_of("/var/lib/adpulse") is None


def test_paths_refuse_unknown_services_and_bad_versions() -> None:
    assert str(layout.release_dir(NEW)) == f"/opt/adpulse/releases/{NEW}"
    with pytest.raises(ReleaseError, match="unknown service 'web'"):
        layout.service_env("web")
    with pytest.raises(ReleaseError, match="not a release name"):
        layout.release_dir("..")


def _run_switch(base: Path, version: str, commands: list[str]) -> None:
    script = "\n".join(commands).replace(str(layout.BASE), str(base))
    subprocess.run(["sh", "-euc", script], check=True)


def test_switch_commands_replace_the_link_to_a_directory_in_one_rename(tmp_path: Path) -> None:
    """Run the exact commands, moved under tmp_path, over an existing `current`."""
    for version in (OLD, NEW):
        (tmp_path / "releases" / version).mkdir(parents=True)
    _run_switch(tmp_path, OLD, layout.switch_commands(OLD))
    assert os.readlink(tmp_path / "current") == f"{tmp_path}/releases/{OLD}"
    _run_switch(tmp_path, NEW, layout.switch_commands(NEW))
    assert os.readlink(tmp_path / "current") == f"{tmp_path}/releases/{NEW}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "releases"]
    assert list((tmp_path / "releases" / OLD).iterdir()) == []


def test_the_naive_switch_is_what_these_commands_avoid(tmp_path: Path) -> None:
    """`ln -sf` over a link to a directory writes a link inside that directory: the check above
    would catch a switch built that way."""
    for version in (OLD, NEW):
        (tmp_path / "releases" / version).mkdir(parents=True)
    _run_switch(tmp_path, OLD, layout.switch_commands(OLD))
    naive = [f"ln -sf {tmp_path}/releases/{NEW} {tmp_path}/current"]
    subprocess.run(["sh", "-euc", naive[0]], check=True)
    assert os.readlink(tmp_path / "current") == f"{tmp_path}/releases/{OLD}"
    assert (tmp_path / "releases" / OLD / NEW).is_symlink()


def test_a_file_every_service_reads_restarts_every_unit() -> None:
    """The topology file and the ClickHouse CA are read by every service at start."""
    ca = "/usr/local/share/ca-certificates/adpulse-clickhouse-ca.crt"
    want = {**desired(), ca: file_state("-----BEGIN CERTIFICATE-----\n", 0o644, "root:root")}
    host = host_as(desired(), NEW)
    plan = compute_plan(want, host, NEW)
    assert [w.path for w in plan.writes] == [ca]
    assert restarted(plan) == set(UNITS)
    assert f"restart adpulse-api.service: file {ca} new" in describe(plan)
