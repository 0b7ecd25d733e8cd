"""A #cloud-config document and the form EC2 carries it in: gzipped, then base64. Pure.

`stacks/userdata.py` decides what a node's document holds; this module encodes it. The instance
gets `for_ec2(document)` as `user_data_base64`: EC2 stores the decoded bytes (the gzip stream)
and cloud-init, finding gzip's magic at the start, decompresses them before it reads the
document ("Gzip Compressed Content" in cloud-init's user-data formats; `convert_string` in
`cloudinit/user_data.py`). So EC2's 16 KiB limit applies to the compressed size, and every file
inside the document travels as plain text: gzip over the whole document packs them better than
gzip file by file, and `sudo cloud-init query userdata` shows them as they are written.
"""

from __future__ import annotations

import base64
import binascii
import gzip
from typing import Any

import yaml

# EC2 refuses user data over 16 KiB, counted after base64 decoding: here, the gzip stream.
USER_DATA_LIMIT = 16 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# cloud-init's write_files encodings (cc_write_files.canonicalize_extraction): decode in order.
_ENCODINGS = {
    **dict.fromkeys(("gz", "gzip"), ("gzip",)),
    **dict.fromkeys(("gz+base64", "gzip+base64", "gz+b64", "gzip+b64"), ("base64", "gzip")),
    **dict.fromkeys(("b64", "base64"), ("base64",)),
}


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


# Multi-line strings as `|` blocks, so the files stay readable in the console.
_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})
_Dumper.add_representer(str, _str)


def write_file(path: str, content: str | bytes, mode: str = "0644") -> dict[str, str]:
    """A write_files entry: bytes as base64, text as it is (the document is gzipped as a whole).
    cloud-init writes as root:root and 0644 unless told otherwise: only other modes are named."""
    entry = {"path": path} if mode == "0644" else {"path": path, "permissions": mode}
    if isinstance(content, bytes):
        return {**entry, "encoding": "b64", "content": base64.b64encode(content).decode()}
    return {**entry, "content": content}


def document(header: str, config: dict[str, Any]) -> str:
    """`header` (comment lines, the first `#cloud-config`) followed by `config` as YAML."""
    return header + str(yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=100))


def for_ec2(text: str) -> str:
    """What the instance's `user_data_base64` carries: `text` gzipped, then base64. mtime=0, so
    the same document always gives the same user data."""
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def ec2_size(user_data_base64: str) -> int:
    """The bytes EC2 counts against USER_DATA_LIMIT: the user data after base64 decoding."""
    return len(base64.b64decode(user_data_base64, validate=True))


def check_fits(text: str, what: str) -> None:
    """Raise ValueError naming `what` if `text`, as EC2 receives it, exceeds USER_DATA_LIMIT."""
    size = ec2_size(for_ec2(text))
    if size > USER_DATA_LIMIT:
        raise ValueError(
            f"user data for {what} is {size} bytes gzipped ({len(text.encode())} before); EC2 "
            f"allows {USER_DATA_LIMIT}; use fewer shards, or shorten the scripts in "
            "templates/cloud-init/"
        )


def unpack(data: bytes) -> str:
    """The document cloud-init reads from user data as EC2 serves it (base64-decoded bytes):
    decompressed if it is gzip, as cloud-init does. Raises ValueError on a damaged stream."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"user data starts as gzip but does not decompress: {exc}") from None
    return data.decode("utf-8", "replace")


def file_contents(text: str) -> list[bytes]:
    """What cloud-init writes for each write_files entry of `text`, decoded as it decodes them;
    none if `text` is not a cloud-config (or its YAML does not parse). An entry that does not
    decode is left out: the caller still has it, encoded, in `text`."""
    if not text.startswith("#cloud-config"):
        return []
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    entries = config.get("write_files") if isinstance(config, dict) else None
    found: list[bytes] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        content = entry.get("content", "")
        data = content if isinstance(content, bytes) else str(content).encode()
        try:
            for step in _ENCODINGS.get(str(entry.get("encoding", "")).lower().strip(), ()):
                data = base64.b64decode(data) if step == "base64" else gzip.decompress(data)
        except (binascii.Error, OSError, EOFError):
            continue
        found.append(data)
    return found
