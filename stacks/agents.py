"""The AWS agents a ClickHouse node installs when its AMI has none: the pinned versions, the
fingerprints of the keys that must sign them, the SSM key the repository keeps, and the
CloudWatch agent's config. Pure: `stacks/userdata.py` writes these into each node's user data.

Only these versions are installed (never `latest/`), and only if the .deb's detached signature
(`.sig`, next to it in AWS's bucket) verifies with exactly the key of the pinned fingerprint.
No sha256 is pinned: AWS publishes none for these packages, so AWS's signature is the check, and
the setup logs each verified package's sha256 for whoever wants to pin it. The download URLs are
built from the version and region in `templates/cloud-init/node-setup.sh.j2` (`get` and `fetch`
lines), which also does the verifying (`verified`). To move a version, change it here; one whose
.sig is not by the pinned key stops the boot saying so (then take AWS's current key and
fingerprint from its documentation).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from adpulse.render import ROOT

# SSM agent: a September 2026 release. AWS rotates this key yearly and publishes it only in
# "Verifying the signature of SSM Agent"; the repository keeps it (export-minimal) in
# templates/cloud-init/amazon-ssm-agent.asc (2784DBF388D19D46, from 2026-06-04 to 2027-11-25).
SSM_AGENT_VERSION = "3.3.5226.0"
SSM_AGENT_KEY_FINGERPRINT = "1C5B395CBE5E74E2F1CA21592784DBF388D19D46"
# Where cloud-init writes that key (dearmored) for the setup's signature check.
SSM_AGENT_KEY_FILE = "/usr/local/share/adpulse/amazon-ssm-agent.gpg"
# CloudWatch agent: "Verifying the signature of the CloudWatch agent package" gives this
# fingerprint (key 3B789C72, since 2017); the setup downloads the key and uses only that one.
CW_AGENT_VERSION = "1.300073.2b1889"
CW_AGENT_KEY_FINGERPRINT = "937616F3450B7D806CBD9725D58167303B789C72"
# ClickHouse's apt repository signing key, by full fingerprint: the key ClickHouse's own server
# image pins (`--recv-keys 3a9ea1193a97b548be1457d48919f6bd2b48d754`, docker/server/Dockerfile).
CLICKHOUSE_REPO_KEY_FINGERPRINT = "3A9EA1193A97B548BE1457D48919F6BD2B48D754"
CW_AGENT_FILE = "/opt/aws/amazon-cloudwatch-agent/etc/adpulse.json"


def setup_pins() -> dict[str, str]:
    """The node setup script's agent values (`templates/cloud-init/node-setup.sh.j2`), unquoted."""
    return {
        "ssm_version": SSM_AGENT_VERSION,
        "ssm_fpr": SSM_AGENT_KEY_FINGERPRINT,
        "ssm_key": SSM_AGENT_KEY_FILE,
        "cw_version": CW_AGENT_VERSION,
        "cw_fpr": CW_AGENT_KEY_FINGERPRINT,
        "ch_fpr": CLICKHOUSE_REPO_KEY_FINGERPRINT,
    }


def dearmor(armored: str) -> bytes:
    """The binary OpenPGP packets of an ASCII-armored block (RFC 4880 section 6.2), as
    `gpg --dearmor` gives them: the repository keeps the readable form, nodes get the smaller."""
    lines = armored.strip().splitlines()
    if not lines or not lines[0].startswith("-----BEGIN PGP"):
        raise ValueError("not an ASCII-armored OpenPGP block: no -----BEGIN PGP line")
    body = lines[lines.index("") + 1 :] if "" in lines else lines[1:]
    data = "".join(line for line in body if not line.startswith(("=", "-----")))
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the armored block's base64 is damaged: {exc}") from None


def ssm_agent_key() -> bytes:
    """The SSM agent's signing key as the repository keeps it, dearmored."""
    return dearmor((ROOT / "templates" / "cloud-init" / "amazon-ssm-agent.asc").read_text())


def cw_agent_config(data_dir: str) -> dict[str, Any]:
    """The CloudWatch agent reports used_percent of the data mount with exactly these dimensions
    (InstanceId, path, fstype); `stacks/alarms.py` matches them."""
    return {
        "agent": {"metrics_collection_interval": 60},
        "metrics": {
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            "metrics_collected": {
                "disk": {
                    "resources": [data_dir],
                    "measurement": ["used_percent"],
                    "drop_device": True,
                },
                "mem": {"measurement": ["used_percent"]},
            },
        },
    }
