"""SSH to the stack's hosts: strict host keys, a key file or the agent, a jump host or a
ProxyCommand (SSM).

Every connection checks the host key against the stack's own known_hosts file
(`.adpulse/known_hosts/<stack>`); a host that is not in it is refused with the command that adds it
(`adpulse deploy trust`), and a changed key is refused with both fingerprints. Nothing secret ever
goes into a command line: `run(..., stdin=...)` and `put(...)` carry it on the channel, so it is
never in `ps` output or the remote shell's history.

Commands pass one `Access` (user, key, jump host, proxy command, state dir) to `open_host`.

The work is in `ssh_types` (targets, access, errors, known_hosts), `ssh_connect` (logging in,
`Connection`), `ssh_exec` (commands with timeouts), `ssh_upload` (SFTP file writes), `ssh_hops`
(proxy command, jump host) and `ssh_trust` (scanning and recording host keys); import from here.
"""

from deploy.ssh_connect import Connection, connect, load_key, open_host
from deploy.ssh_exec import KILL_GRACE_S, CommandTimeout
from deploy.ssh_hops import proxy_command_line
from deploy.ssh_trust import scan, trust
from deploy.ssh_types import (
    CONNECT_TIMEOUT_S,
    STATE_DIR,
    Access,
    RemoteError,
    Result,
    SshError,
    Target,
    fingerprint,
    known_hosts_path,
)
from deploy.ssh_upload import UPLOAD_STALL_S

__all__ = [
    "CONNECT_TIMEOUT_S",
    "KILL_GRACE_S",
    "STATE_DIR",
    "UPLOAD_STALL_S",
    "Access",
    "CommandTimeout",
    "Connection",
    "RemoteError",
    "Result",
    "SshError",
    "Target",
    "connect",
    "fingerprint",
    "known_hosts_path",
    "load_key",
    "open_host",
    "proxy_command_line",
    "scan",
    "trust",
]
