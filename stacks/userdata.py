"""Each ClickHouse node's user data: a #cloud-config that leaves the node installed and running.

Pure: plain values in, text out; `stacks/clickhouse.py` resolves the Outputs and calls
`node_user_data`. The server's config, users, macros and Keeper raft settings are the files
`adpulse config render` writes (`render_node_configs`, same templates, same options), so a node
built here and one configured by hand from the CLI cannot drift apart. The user data holds secret
ARNs only: `adpulse-secrets.service` fetches the values at every boot. To read a node's files as
it got them: `sudo cloud-init query userdata` on the host, or the paths under write_files.
"""

from __future__ import annotations

import base64
import gzip
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from adpulse.clickhouse.config import SECRET_ENV, ConfigOptions, render_node_configs
from adpulse.render import render
from adpulse.topology import Topology

CONFIG_DIR = "/etc/clickhouse-server"
ENV_FILE = "/run/adpulse/clickhouse.env"
CA_FILE = "/usr/local/share/ca-certificates/adpulse-clickhouse-ca.crt"
CW_AGENT_FILE = "/opt/aws/amazon-cloudwatch-agent/etc/adpulse.json"
SETUP = "/usr/local/sbin/adpulse-node-setup"
FETCH_SECRETS = "/usr/local/sbin/adpulse-fetch-secrets"
BACKUP = "/usr/local/sbin/adpulse-backup"
DISK_FSTYPE = "ext4"
# EC2 refuses user data over 16 KiB: files above GZIP_OVER bytes (configs, scripts) travel
# gzipped, which leaves room for larger topologies; the small units stay readable.
USER_DATA_LIMIT = 16 * 1024
GZIP_OVER = 1024
# Which Secrets Manager secret (`stacks/secret_store.py` keys) feeds each SECRET_ENV variable;
# passwords reach the server as SHA-256 digests, the cluster secret as it is.
SECRET_KEYS = {
    "admin": "clickhouse-admin-password",
    "ingest": "clickhouse-ingest-password",
    "api": "clickhouse-api-password",
    "cluster": "clickhouse-cluster-secret",
}
_DIGESTED = {"admin", "ingest", "api"}
# Everything the scripts call that Debian's cloud image may lack.
PACKAGES = ["awscli", "ca-certificates", "curl", "gnupg", "openssl"]


@dataclass(frozen=True)
class BackupPlan:
    """Daily `BACKUP DATABASE ... TO S3` on one replica, keeping `retention_days` of backups."""

    bucket: str
    region: str
    retention_days: int = 14
    prefix: str = "clickhouse/"
    time: str = "03:00:00"  # UTC; a timer fires within 15 minutes after


@dataclass(frozen=True)
class NodeBoot:
    """What one node's first boot needs besides the topology (resolved, plain values)."""

    host: str
    domain: str
    region: str
    volume_id: str
    clickhouse_version: str
    secret_arns: Mapping[str, str]  # SECRET_KEYS values -> ARN
    tls_secret_arn: str
    ca_cert_pem: str
    # `backup_host` runs the timer; with several shards (ON CLUSTER) every node writes its part
    # and gets the bucket's S3 settings, with one shard the other replicas never see the bucket.
    backup: BackupPlan | None = None
    # Egress `endpoints`: no internet, so no apt at boot; the AMI must carry clickhouse-server and
    # -client at `clickhouse_version`, awscli and the agents, and the setup fails saying so if not.
    offline: bool = False


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


# Multi-line strings as `|` blocks, so the small files stay readable in the console.
_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})
_Dumper.add_representer(str, _str)


def _shell(**values: str | int) -> dict[str, str]:
    """Template values for shell scripts, each quoted as one word."""
    return {key: shlex.quote(str(value)) for key, value in values.items()}


def _file(path: str, content: str, mode: str = "0644") -> dict[str, str]:
    entry = {"path": path, "owner": "root:root", "permissions": mode}
    if len(content.encode()) > GZIP_OVER:
        # mtime=0: the same files always give the same user data.
        packed = gzip.compress(content.encode(), mtime=0)
        return {**entry, "encoding": "gz+b64", "content": base64.b64encode(packed).decode()}
    return {**entry, "content": content}


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


def _secret_env(arns: Mapping[str, str]) -> list[dict[str, Any]]:
    missing = sorted(key for key in SECRET_KEYS.values() if key not in arns)
    if missing:
        raise ValueError(f"NodeBoot.secret_arns lacks {', '.join(missing)}")
    return [
        {
            "name": shlex.quote(SECRET_ENV[role]),
            "arn": shlex.quote(arns[key]),
            "digest": role in _DIGESTED,
        }
        for role, key in SECRET_KEYS.items()
    ]


def _backup_files(
    boot: NodeBoot, plan: BackupPlan, topology: Topology, options: ConfigOptions
) -> list[dict[str, str]]:
    # Several shards: ON CLUSTER backs up one replica of each; one shard: this replica has it all.
    on_cluster = f" ON CLUSTER {topology.cluster}" if len(topology.shards) > 1 else ""
    script = render(
        "cloud-init/backup.sh.j2",
        host=boot.host,
        database=options.database,
        on_cluster=on_cluster,
        **_shell(
            region=plan.region,
            bucket=plan.bucket,
            prefix=plan.prefix,
            retention_days=plan.retention_days,
            tcp_port=topology.ports.tcp,
        ),
    )
    return [
        _file(BACKUP, script, "0755"),
        _file(
            "/etc/systemd/system/adpulse-backup.service",
            render("cloud-init/adpulse-backup.service.j2", script=BACKUP),
        ),
        _file(
            "/etc/systemd/system/adpulse-backup.timer",
            render("cloud-init/adpulse-backup.timer.j2", time=plan.time),
        ),
    ]


def node_user_data(boot: NodeBoot, topology: Topology, options: ConfigOptions | None = None) -> str:
    """The #cloud-config for `boot.host`; raises ValueError for a host not in the topology."""
    options = options or ConfigOptions()
    if boot.host not in topology.hosts:
        raise ValueError(f"{boot.host!r} is not a host of topology {topology.hosts}")
    rendered = render_node_configs(topology, options)
    prefix = f"{boot.host}/"
    files = [
        _file(f"{CONFIG_DIR}/{relative.removeprefix(prefix)}", text)
        for relative, text in rendered.items()
        if relative.startswith(prefix)
    ]
    plan = boot.backup
    runs_backups = plan is not None and boot.host == backup_host(topology)
    if plan is not None and (runs_backups or len(topology.shards) > 1):
        files.append(
            _file(
                f"{CONFIG_DIR}/config.d/adpulse-backups.xml",
                render(
                    "cloud-init/backups.xml.j2",
                    bucket=plan.bucket,
                    region=plan.region,
                    prefix=plan.prefix,
                ),
            )
        )
    setup = render(
        "cloud-init/node-setup.sh.j2",
        host=boot.host,
        backup=runs_backups,
        **_shell(
            volume_serial=boot.volume_id.replace("-", ""),
            data_dir=options.data_dir,
            fstype=DISK_FSTYPE,
            clickhouse_version=boot.clickhouse_version,
            region=boot.region,
            offline=str(boot.offline).lower(),
        ),
    )
    fetch = render(
        "cloud-init/fetch-secrets.sh.j2",
        env=_secret_env(boot.secret_arns),
        **_shell(
            region=boot.region,
            env_file=ENV_FILE,
            tls_secret_arn=boot.tls_secret_arn,
            tls_cert=options.tls_cert,
            tls_key=options.tls_key,
        ),
    )
    files += [
        _file(CA_FILE, boot.ca_cert_pem),
        _file(CW_AGENT_FILE, json.dumps(cw_agent_config(options.data_dir), indent=2) + "\n"),
        _file(SETUP, setup, "0755"),
        _file(FETCH_SECRETS, fetch, "0755"),
        _file(
            "/etc/systemd/system/adpulse-secrets.service",
            render("cloud-init/adpulse-secrets.service.j2", script=FETCH_SECRETS),
        ),
        _file(
            "/etc/systemd/system/clickhouse-server.service.d/adpulse.conf",
            render(
                "cloud-init/clickhouse-server.conf.j2", data_dir=options.data_dir, env_file=ENV_FILE
            ),
        ),
    ]
    if plan is not None and runs_backups:
        files += _backup_files(boot, plan, topology, options)
    config = {
        "hostname": boot.host,
        "fqdn": f"{boot.host}.{boot.domain}",
        # Not 127.0.1.1 for our own name: Keeper refuses a raft configuration that mixes
        # loopback and remote hosts, so `ch-1` must resolve (private zone) to the VPC address.
        "manage_etc_hosts": False,
        # Offline, apt has no repository to reach and its failure would stop the boot.
        **({} if boot.offline else {"package_update": True, "packages": PACKAGES}),
        "write_files": files,
        "runcmd": [[SETUP]],
    }
    header = (
        "#cloud-config\n"
        f"# adpulse ClickHouse node {boot.host} of {topology.summary()}: rendered by\n"
        "# stacks/userdata.py. Secret ARNs only; the values are fetched at boot.\n"
    )
    text = header + str(yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=100))
    if len(text.encode()) > USER_DATA_LIMIT:
        raise ValueError(
            f"user data for {boot.host} is {len(text.encode())} bytes; EC2 allows "
            f"{USER_DATA_LIMIT}; use fewer shards, or shorten the scripts in templates/cloud-init/"
        )
    return text


def backup_host(topology: Topology) -> str:
    """The replica that runs the backup timer: the first host of the first shard."""
    return topology.shards[0][0]
