"""A release built earlier (`adpulse deploy --release FILE`), read back from its archive."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from deploy.layout import ReleaseError, check_version
from deploy.release import MANIFEST, Release, _sha256


def read_release(archive: Path) -> Release:
    """The Release an archive holds, from its manifest; ReleaseError naming the file if it is
    missing, not a release archive, or its manifest is malformed."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            text = member.read()
    except FileNotFoundError:
        raise ReleaseError(
            f"no release archive {archive}: build one with `adpulse deploy`"
        ) from None
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise ReleaseError(
            f"{archive} is not an adpulse release archive ({type(exc).__name__}: {exc})"
        ) from None
    try:
        doc = json.loads(text)
        version = check_version(str(doc["version"]))
        project = str(doc["project"])
        files = {str(k): str(v) for k, v in dict(doc["files"]).items()}
        release = Release(
            version=version,
            commit=str(doc["commit"]),
            dirty=bool(doc["dirty"]),
            platform=str(doc["platform"]),
            project_version=project.partition("==")[2],
            archive=archive,
            sha256=_sha256(archive),
            manifest_sha256=hashlib.sha256(text).hexdigest(),
            files=files,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ReleaseError(f"{archive}: its {MANIFEST} is malformed ({exc})") from None
    if not release.project_version:
        raise ReleaseError(f"{archive}: its {MANIFEST} names no project version")
    return release
