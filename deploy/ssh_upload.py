"""Atomic file writes to a host over an SFTP session that writes as root."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from adpulse.errors import AdpulseError
from deploy.ssh_types import CONNECT_TIMEOUT_S, RemoteError, Result, SshError, Target

if TYPE_CHECKING:
    import paramiko

UPLOAD_STALL_S = 60.0  # an upload whose host acknowledges nothing for this long has failed
# The host's OpenSSH sftp-server, run as root by a login user other than root (Debian and
# Ubuntu put it in the first place, Amazon Linux and RHEL in the second).
_SFTP_SERVER = (
    "for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server "
    '/usr/lib/ssh/sftp-server; do [ -x "$p" ] && exec "$p"; done; '
    'echo "no sftp-server in /usr/lib/openssh or /usr/libexec/openssh" >&2; exit 127'
)


class Uploader:
    """`Connection.put` and `put_file`'s work, on the SFTP session it opens at the first upload."""

    def __init__(
        self,
        target: Target,
        transport: Callable[[], paramiko.Transport],
        run: Callable[..., Result],
    ) -> None:
        self.target = target
        self._transport = transport  # the connection's live transport, or SshError
        self._run = run  # the connection's `run`
        self._sftp: paramiko.SFTPClient | None = None

    def upload(self, path: str, source: IO[bytes], size: int, mode: int, owner: str) -> None:
        """Write `size` bytes of `source` to `path` as `Connection.put` says."""
        import paramiko

        dest = PurePosixPath(path)
        if not dest.is_absolute() or not dest.name:
            raise ValueError(f"upload to an absolute file path, not {path!r}")
        folder, q = shlex.quote(str(dest.parent)), shlex.quote
        stage = (
            f"set -e; umask 022; mkdir -p -- {folder}; "
            f"tmp=$(mktemp -- {q(f'{dest.parent}/.{dest.name}.XXXXXX')}); "
            'echo "$tmp"'
        )
        tmp = self._run(stage).stdout.strip()
        try:
            try:
                self._sftp_client().putfo(source, tmp, file_size=size, confirm=True)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self.close()  # it may be half-way through a request: start afresh
                raise self._upload_failed(path, size, exc) from None
            done = self._run(
                f'set -e; tmp={q(tmp)}; chown -- {q(owner)} "$tmp"; chmod {mode:o} "$tmp"; '
                f'sync -- "$tmp"; mv -f -- "$tmp" {q(path)}',
                check=False,
            )
            if done.code != 0:
                raise RemoteError(self.target.name, f"put {path}", done.code, "", done.stderr)
        except BaseException:
            try:
                self._run(f"rm -f -- {q(tmp)}", check=False, timeout=30)
            except AdpulseError:
                pass  # the host is gone; the hidden temporary file is all that is left
            raise

    def _sftp_client(self) -> paramiko.SFTPClient:
        """An SFTP session that writes as root, on this connection's transport."""
        import paramiko

        if self._sftp is not None:
            return self._sftp
        transport = self._transport()
        if self.target.user == "root":
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
            except paramiko.SSHException as exc:
                raise SshError(
                    f"{self.target.name} refused SFTP ({exc}): uploads need sshd's sftp "
                    "subsystem (`Subsystem sftp ...` in /etc/ssh/sshd_config, on by default)"
                ) from None
        else:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT_S)
            chan.exec_command(f"sudo -n sh -c {shlex.quote(_SFTP_SERVER)}")
            try:
                self._sftp = paramiko.SFTPClient(chan)
            except (paramiko.SSHException, EOFError) as exc:
                said = " | ".join(_stderr_of(chan).strip().splitlines()[-3:])
                chan.close()
                raise SshError(
                    f"{self.target.name}: cannot start the sftp-server as root through "
                    f"`sudo -n` ({said or exc}): {self.target.user} needs passwordless sudo, "
                    "and the host OpenSSH's sftp-server"
                ) from None
        assert self._sftp is not None
        self._sftp.get_channel().settimeout(UPLOAD_STALL_S)
        return self._sftp

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None

    def free_bytes(self, path: str) -> tuple[int, str]:
        """(bytes free to root, mount point) of the file system that holds `path`, or would
        hold it: a path that does not exist yet is looked up by its nearest existing parent."""
        script = (
            f'p={shlex.quote(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            'df -B1 --output=avail,target "$p" | tail -n 1'
        )
        free, _, mount = self._run(script, timeout=30).stdout.strip().partition(" ")
        return int(free), mount.strip()

    def _upload_failed(self, path: str, size: int, exc: BaseException) -> SshError:
        folder = PurePosixPath(path).parent
        why = f"upload of {path} ({size} bytes) to {self.target.name} failed ({exc or type(exc)})"
        try:
            free, _ = self.free_bytes(str(folder))
        except (AdpulseError, ValueError):
            return SshError(f"{why}: check that the host is up and its disk has room")
        if free < size:
            return SshError(
                f"{why}: its disk is full ({free} bytes free in {folder}, {size} needed): free "
                "space there, then deploy again"
            )
        return SshError(f"{why}: check the host's sshd log (`journalctl -u ssh`)")


def _stderr_of(chan: Any) -> str:
    """What a finished channel wrote to stderr."""
    err = bytearray()
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(65536)
    return err.decode(errors="replace")
