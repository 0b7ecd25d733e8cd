"""What a ClickHouse node's user data says about the cluster: its FQDN, shape and CA. Pure.

The stack's program writes these into each node's #cloud-config (stacks/userdata.py) and
nowhere else in AWS: the header names the node and the cluster's shape (`Topology.summary`),
`fqdn` is the node's private-zone name, and the CA its clients trust is one of `write_files`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from dataclasses import dataclass
from typing import Any

import yaml

from deploy.inventory import InventoryError
from stacks.userdata import CA_FILE

_HEADER = re.compile(
    r"^# adpulse ClickHouse node (?P<host>\S+) of (?P<cluster>\w+): "
    r"(?P<shards>\d+) shard\(s\) x (?P<replicas>\d+) replica\(s\)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class NodeFacts:
    host: str
    fqdn: str
    shards: int
    replicas: int
    ca_pem: str

    @property
    def domain(self) -> str:
        """The private zone the nodes live in: `adpulse.internal` of `ch-1.adpulse.internal`."""
        return self.fqdn.removeprefix(f"{self.host}.")


GZIP_MAGIC = b"\x1f\x8b"


def unpack(data: bytes) -> str:
    """User data as EC2 serves it (base64-decoded) to the document cloud-init reads: the stack
    sends it gzipped (stacks/cloud_config.py `for_ec2`), cloud-init decompresses it, so do we.
    Raises ValueError for a damaged stream or text that is not UTF-8."""
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"user data starts as gzip but does not decompress: {exc}") from None
    return data.decode("utf-8")


def node_facts(user_data: str, where: str) -> NodeFacts:
    """Read one node's user data; InventoryError naming `where` if the program did not write it."""
    fix = "it was not created by the stack's program (stacks/userdata.py); use --outputs instead"
    header = _HEADER.search(user_data)
    try:
        config = yaml.safe_load(user_data)
    except yaml.YAMLError:
        config = None
    if header is None or not isinstance(config, dict):
        raise InventoryError(f"{where} has no adpulse ClickHouse user data: {fix}")
    fqdn = config.get("fqdn")
    files = [f for f in config.get("write_files") or [] if isinstance(f, dict)]
    ca = next((f for f in files if f.get("path") == CA_FILE), None)
    if not isinstance(fqdn, str) or ca is None:
        missing = "fqdn" if not isinstance(fqdn, str) else CA_FILE
        raise InventoryError(f"{where}: its user data lacks {missing}: {fix}")
    return NodeFacts(
        host=header["host"],
        fqdn=fqdn,
        shards=int(header["shards"]),
        replicas=int(header["replicas"]),
        ca_pem=_content(ca, where),
    )


def _content(entry: dict[str, Any], where: str) -> str:
    """A write_files entry's text, undoing the encodings cloud-init knows and the program uses."""
    content = str(entry.get("content", ""))
    encoding = str(entry.get("encoding", "text"))
    try:
        if encoding == "text":
            return content
        if encoding == "b64":
            return base64.b64decode(content, validate=True).decode()
        if encoding == "gz+b64":
            return gzip.decompress(base64.b64decode(content, validate=True)).decode()
    except (binascii.Error, OSError, UnicodeDecodeError) as exc:
        path = entry.get("path")
        raise InventoryError(f"{where}: {path} in its user data is damaged: {exc}") from None
    raise InventoryError(f"{where}: {entry.get('path')} has unknown encoding {encoding!r}")
