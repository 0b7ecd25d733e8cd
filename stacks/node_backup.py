"""ClickHouse's own backups on the nodes: which replica runs the daily `BACKUP ... TO S3` timer,
and the files (script, units, S3 settings) its user data carries. Pure; the bucket itself is
`stacks/backups.py`, the node's whole user data `stacks/userdata.py`.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

from adpulse.clickhouse.config import ConfigOptions
from adpulse.clickhouse.roles import ROLE_USERS
from adpulse.render import render
from adpulse.topology import Topology
from stacks.cloud_config import write_file

BACKUP = "/usr/local/sbin/adpulse-backup"
S3_SETTINGS = "/etc/clickhouse-server/config.d/adpulse-backups.xml"


@dataclass(frozen=True)
class BackupPlan:
    """Daily `BACKUP DATABASE ... TO S3` on one replica, keeping `retention_days` of backups."""

    bucket: str
    region: str
    retention_days: int = 14
    prefix: str = "clickhouse/"
    time: str = "03:00:00"  # UTC; a timer fires within 15 minutes after


def backup_host(topology: Topology) -> str:
    """The replica that runs the backup timer: the first host of the first shard."""
    return topology.shards[0][0]


def s3_settings(plan: BackupPlan) -> dict[str, str]:
    """The write_files entry of the bucket's S3 settings (the instance role's credentials)."""
    xml = render(
        "cloud-init/backups.xml.j2", bucket=plan.bucket, region=plan.region, prefix=plan.prefix
    )
    return write_file(S3_SETTINGS, xml)


def _loopback_admitted(options: ConfigOptions) -> bool:
    loopback = ipaddress.ip_address("127.0.0.1")
    return any(loopback in ipaddress.ip_network(n, strict=False) for n in options.networks)


def timer_files(
    plan: BackupPlan,
    host: str,
    admin_secret_arn: str,
    topology: Topology,
    options: ConfigOptions,
) -> list[dict[str, str]]:
    """The backup script and its systemd service and timer, for `backup_host`; ValueError if the
    options keep the script from logging in."""
    # The script logs in as `admin` over loopback (why: templates/cloud-init/backup.sh.j2).
    if not _loopback_admitted(options):
        raise ValueError(
            f"ConfigOptions.networks {options.networks} lacks 127.0.0.1: the backup logs in as "
            f"{ROLE_USERS['admin']!r} over loopback; add 127.0.0.1 to the networks"
        )
    # Several shards: ON CLUSTER backs up one replica of each; one shard: this replica has it all.
    on_cluster = f" ON CLUSTER {topology.cluster}" if len(topology.shards) > 1 else ""
    words = {
        "region": plan.region,
        "bucket": plan.bucket,
        "prefix": plan.prefix,
        "retention_days": plan.retention_days,
        "tcp_port": topology.ports.tcp,
        "user": ROLE_USERS["admin"],
        "user_secret_arn": admin_secret_arn,
    }
    script = render(
        "cloud-init/backup.sh.j2",
        host=host,
        database=options.database,
        on_cluster=on_cluster,
        # Each value quoted as one shell word.
        **{key: shlex.quote(str(value)) for key, value in words.items()},
    )
    return [
        write_file(BACKUP, script, "0755"),
        write_file(
            "/etc/systemd/system/adpulse-backup.service",
            render("cloud-init/adpulse-backup.service.j2", script=BACKUP),
        ),
        write_file(
            "/etc/systemd/system/adpulse-backup.timer",
            render("cloud-init/adpulse-backup.timer.j2", time=plan.time),
        ),
    ]
