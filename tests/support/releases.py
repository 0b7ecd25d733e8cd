"""Releases for the deploy tests: one real build per session, and variants of it.

A variant is the same release with the project's wheel rebuilt from a patched copy of the
checkout as it is (its tracked and untracked files, what `uv build` of the session build saw,
so with a dirty tree a variant runs the same code as the build plus its patch), then `uv build`:
a second good release to roll to, or a bad one whose API fails its health check. Everything else
in it (the locked wheels, the dashboard, the Node.js runtime) is the session build's, so a
variant costs seconds, not a build.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path

from deploy.release import MANIFEST, SUMS, WHEELS, Release, _pack, _sha256, _tool

ROOT = Path(__file__).resolve().parents[2]


def variant(base: Release, out: Path, tag: str, patches: Mapping[str, tuple[str, str]]) -> Release:
    """`base` with its adpulse wheel rebuilt after each `path: (old, new)` text replacement
    (each `old` must occur); named `<tag as 12 hex>-dirty-<digest>` so it differs from base."""
    work = out / f"variant-{tag}"
    src, stage = work / "src", work / "stage"
    src.mkdir(parents=True)
    stage.mkdir()
    _copy_checkout(src)
    for rel, (old, new) in patches.items():
        path = src / rel
        text = path.read_text()
        assert old in text, f"{rel} no longer holds {old!r}: update the variant's patch"
        path.write_text(text.replace(old, new))
    with tarfile.open(base.archive) as tar:
        tar.extractall(stage, filter="data")
    wheels = stage / WHEELS
    old_wheel = next(wheels.glob("adpulse-*.whl"))
    old_wheel.unlink()
    built = work / "built"
    subprocess.run(
        [_tool("uv"), "build", "--wheel", "--quiet", "--out-dir", str(built)],
        cwd=src,
        check=True,
        capture_output=True,
    )
    new_wheel = next(built.glob("adpulse-*.whl"))
    new_wheel.rename(wheels / old_wheel.name)
    (stage / MANIFEST).unlink()
    (stage / SUMS).unlink()
    files = {
        p.relative_to(stage).as_posix(): _sha256(p)
        for p in sorted(stage.rglob("*"))
        if p.is_file() or p.is_symlink()
    }
    sums = "".join(f"{digest}  {name}\n" for name, digest in files.items())
    (stage / SUMS).write_text(sums)
    files[SUMS] = hashlib.sha256(sums.encode()).hexdigest()
    version = f"{hashlib.sha256(tag.encode()).hexdigest()[:12]}-dirty-{files[SUMS][:8]}"
    manifest = json.loads(
        subprocess.run(
            ["tar", "-xzOf", str(base.archive), MANIFEST], capture_output=True, check=True
        ).stdout
    )
    manifest |= {"version": version, "dirty": True, "files": files}
    encoded = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (stage / MANIFEST).write_bytes(encoded)
    packed = out / f"adpulse-{version}-{base.platform}.tar.gz"
    _pack(stage, [*files, MANIFEST], packed)
    return Release(
        version,
        base.commit,
        True,
        base.platform,
        base.project_version,
        packed,
        _sha256(packed),
        hashlib.sha256(encoded).hexdigest(),
        files,
    )


def _copy_checkout(dest: Path) -> None:
    """The checkout's files as they are now into `dest`: tracked ones (not deleted) and
    untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
