"""The dashboard's production build in a release: Next's standalone server (`server.js` and the
node_modules it traces), with `.next/static` and `public/` beside it, so `node server.js` in
that folder serves the dashboard.

Built offline by the build machine's Node.js and npm from the node_modules that
`scripts/dashboard-deps.sh` installed, and only when the dashboard's files or that Node.js
changed since the build in `dashboard/.next`. The bundle is JavaScript, but native code in it
runs on one arch only: a tree holding any for another arch than the hosts' is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.layout import ReleaseError

MIN_NODE = (20, 19)  # dashboard/package.json `engines`
BUILD_TIMEOUT_S = 900.0
# commands/local/dashboard.py takes the same lock, so `adpulse up` never builds into .next
# while a release is built or copied from it.
LOCK = ".build.lock"
INSTALL_STAMP = Path("node_modules") / ".adpulse-package-lock.sha256"  # dashboard-deps.sh
BUILD_STAMP = Path(".next") / "adpulse-release-build.json"
_ELF_MACHINES = {3: "x86", 40: "arm", 62: "x86_64", 183: "aarch64"}
_DEPS_HINT = "run `bash scripts/dashboard-deps.sh` first"


def elf_arch(head: bytes) -> str | None:
    """The arch of an ELF file from its first 20 bytes (`x86_64`, `aarch64`); None if not ELF."""
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _ELF_MACHINES.get(machine, f"ELF machine {machine}")


def platform_arch(platform: str) -> str:
    """`manylinux_2_36_aarch64` -> `aarch64`."""
    for arch in ("x86_64", "aarch64"):
        if platform.endswith(f"_{arch}"):
            return arch
    raise ReleaseError(f"platform {platform!r}: the hosts are manylinux x86_64 or aarch64")


def foreign_native(tree: Path, arch: str) -> list[str]:
    """Files under `tree` that are native code (ELF: `*.node` addons, shared libraries) for
    another arch than `arch`, as `path (arch)`."""
    found = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as file:
                other = elf_arch(file.read(20))
            if other is not None and other != arch:
                found.append(f"{path.relative_to(tree).as_posix()} ({other})")
    return found


def check_native(tree: Path, arch: str) -> None:
    """Refuse a dashboard tree holding native code for another arch than the hosts'."""
    foreign = foreign_native(tree, arch)
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ReleaseError(
            f"the dashboard's standalone build holds native code the {arch} hosts cannot run "
            f"({', '.join(foreign[:3])}{more}): leave its package out of the trace "
            f"(outputFileTracingExcludes in dashboard/next.config.ts) or build the release on "
            f"an {arch} machine"
        )


def parse_node_version(text: str) -> tuple[int, int]:
    match = re.match(r"v?(\d+)\.(\d+)", text.strip())
    if not match:
        raise ReleaseError(f"cannot read the Node.js version from {text.strip()!r}")
    return int(match[1]), int(match[2])


def stage_dashboard(source: Path, dest: Path, arch: str) -> None:
    """The standalone server built from `source` (the dashboard folder) into `dest`.

    Raises ReleaseError when Node.js or the npm packages are missing, the build fails, or the
    tree holds native code for another arch than `arch`. Progress goes to stderr.
    """
    node, npm = _node_and_npm()
    stamp = source / INSTALL_STAMP
    lock_digest = hashlib.sha256((source / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != lock_digest:
        raise ReleaseError(
            f"{source}/node_modules is missing or not from package-lock.json: {_DEPS_HINT}"
        )
    node_version = _output([node, "--version"], source).strip()
    with _build_lock(source):
        inputs = inputs_digest(source, node_version)
        if built_from(source) == inputs:
            _say(f"the dashboard's build in {source}/.next is current")
        else:
            _say(f"building the dashboard with Node.js {node_version} (next build)")
            env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
            env["NEXT_TELEMETRY_DISABLED"] = "1"
            (source / BUILD_STAMP).unlink(missing_ok=True)  # a failed build leaves no record
            _output([npm, "run", "--silent", "build"], source, env, BUILD_TIMEOUT_S)
            build_id = (source / ".next" / "BUILD_ID").read_text().strip()
            record = {"inputs": inputs, "build_id": build_id}
            (source / BUILD_STAMP).write_text(json.dumps(record) + "\n")
        _copy(source, dest)
    check_native(dest, arch)


def inputs_digest(source: Path, node_version: str) -> str:
    """A digest of what a build depends on: every file of the dashboard git sees (tracked or
    untracked, not ignored: so not node_modules or .next; package-lock.json stands for
    node_modules) and the Node.js version."""
    listed = _output(["git", "ls-files", "-co", "--exclude-standard", "-z", "."], source)
    digest = hashlib.sha256(f"node {node_version}\n".encode())
    for name in sorted(set(filter(None, listed.split("\0")))):
        path = source / name
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "gone"
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()


def built_from(source: Path) -> str | None:
    """The inputs digest of the build in `source/.next`, if a release build made it (the build
    id ties the record to that very build: `adpulse up` building since makes it None)."""
    try:
        record = json.loads((source / BUILD_STAMP).read_text())
        build_id = (source / ".next" / "BUILD_ID").read_text().strip()
        standalone = (source / ".next" / "standalone" / "server.js").is_file()
    except (OSError, ValueError):
        return None
    if not standalone or record.get("build_id") != build_id:
        return None
    inputs = record.get("inputs")
    return inputs if isinstance(inputs, str) else None


def _copy(source: Path, dest: Path) -> None:
    built = source / ".next"
    # `.env*` files Next copies next to server.js stay out: hosts are configured by
    # /etc/adpulse only, never by a file from the machine that built the release.
    shutil.copytree(built / "standalone", dest, ignore=shutil.ignore_patterns(".env*"))
    shutil.copytree(built / "static", dest / ".next" / "static")
    if (source / "public").is_dir():
        shutil.copytree(source / "public", dest / "public")


def _node_and_npm() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    need = ".".join(map(str, MIN_NODE))
    if node is None or npm is None:
        raise ReleaseError(f"building the dashboard needs Node.js {need}+ with npm on PATH")
    found = _output([node, "--version"], Path.cwd()).strip()
    if parse_node_version(found) < MIN_NODE:
        raise ReleaseError(
            f"Node.js {found} on PATH is too old to build the dashboard: need {need}+"
        )
    return node, npm


@contextmanager
def _build_lock(source: Path) -> Iterator[None]:
    with open(source / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _output(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60.0
) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ReleaseError(
            f"`{' '.join(command[:3])}` in {cwd} ran past {timeout:.0f} s"
        ) from error
    if done.returncode != 0:
        tail = " | ".join((done.stderr + done.stdout).strip().splitlines()[-8:])
        raise ReleaseError(f"`{' '.join(command[:3])}` in {cwd} exited {done.returncode}: {tail}")
    return done.stdout


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)
