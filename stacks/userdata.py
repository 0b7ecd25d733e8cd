"""Each ClickHouse node's user data: a #cloud-config that leaves the node installed and running.

Pure: plain values in, text out; `stacks/clickhouse.py` resolves the Outputs and calls
`node_user_data`. The server's config, users, macros and Keeper raft settings are the files
`adpulse config render` writes (`render_node_configs`, same templates, same options), so a node
built here and one configured by hand from the CLI cannot drift apart; here the topology carries
the stack's domain, so nodes name each other by FQDN. The user data holds secret ARNs only:
`adpulse-secrets.service` fetches the values at every boot and `adpulse-secrets-refresh.timer`
daily, which brings renewed certificates to running nodes. To read a node's files as it got them:
`sudo cloud-init query userdata` on the host, or the paths under write_files.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from adpulse.clickhouse.config import SECRET_ENV, ConfigOptions, render_node_configs
from adpulse.clickhouse.roles import ROLE_USERS
from adpulse.render import ROOT, render
from adpulse.topology import Topology

CONFIG_DIR = "/etc/clickhouse-server"
ENV_FILE = "/run/adpulse/clickhouse.env"
CA_FILE = "/usr/local/share/ca-certificates/adpulse-clickhouse-ca.crt"
CW_AGENT_FILE = "/opt/aws/amazon-cloudwatch-agent/etc/adpulse.json"
SETUP = "/usr/local/sbin/adpulse-node-setup"
FETCH_SECRETS = "/usr/local/sbin/adpulse-fetch-secrets"
BACKUP = "/usr/local/sbin/adpulse-backup"
SSM_AGENT_KEY_FILE = "/usr/local/share/adpulse/amazon-ssm-agent.gpg"
DISK_FSTYPE = "ext4"
# EC2 refuses user data over 16 KiB: files above GZIP_OVER bytes (configs, scripts) travel
# gzipped when that is smaller, which leaves room for larger topologies; small units stay readable.
USER_DATA_LIMIT = 16 * 1024
GZIP_OVER = 1024
# The agents the setup installs when the AMI has none: these versions only (no `latest/`), and
# only if the .deb's detached signature (.sig, next to it in AWS's bucket) verifies with exactly
# the key of this fingerprint. No sha256 is pinned: AWS publishes none for these packages, so
# AWS's signature is the check, and the setup logs each verified package's sha256 for whoever
# wants to pin it. To move a version, change it here; one whose .sig is not by this key stops
# the boot saying so (then take AWS's current key and fingerprint from its documentation).
# SSM agent: a September 2026 release. AWS rotates this key yearly and publishes it only in
# "Verifying the signature of SSM Agent"; the repository keeps it (export-minimal) in
# templates/cloud-init/amazon-ssm-agent.asc (2784DBF388D19D46, from 2026-06-04 to 2027-11-25).
SSM_AGENT_VERSION = "3.3.5226.0"
SSM_AGENT_KEY_FINGERPRINT = "1C5B395CBE5E74E2F1CA21592784DBF388D19D46"
# CloudWatch agent: "Verifying the signature of the CloudWatch agent package" gives this
# fingerprint (key 3B789C72, since 2017); the setup downloads the key and uses only that one.
CW_AGENT_VERSION = "1.300073.2b1889"
CW_AGENT_KEY_FINGERPRINT = "937616F3450B7D806CBD9725D58167303B789C72"
# The refresh timer's spread: replicas reload their certificates at different times of day.
REFRESH_DELAY = "4h"
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


def _file(path: str, content: str | bytes, mode: str = "0644") -> dict[str, str]:
    """A write_files entry: bytes as base64; text as it is, or gzipped when that is smaller.
    cloud-init writes as root:root and 0644 unless told otherwise: only other modes are named."""
    entry = {"path": path} if mode == "0644" else {"path": path, "permissions": mode}
    if isinstance(content, bytes):
        return {**entry, "encoding": "b64", "content": base64.b64encode(content).decode()}
    if len(content.encode()) > GZIP_OVER:
        # mtime=0: the same files always give the same user data.
        packed = base64.b64encode(gzip.compress(content.encode(), mtime=0)).decode()
        if len(packed) < len(content.encode()):
            return {**entry, "encoding": "gz+b64", "content": packed}
    return {**entry, "content": content}


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


def _loopback_admitted(options: ConfigOptions) -> bool:
    loopback = ipaddress.ip_address("127.0.0.1")
    return any(loopback in ipaddress.ip_network(n, strict=False) for n in options.networks)


def _backup_files(
    boot: NodeBoot, plan: BackupPlan, topology: Topology, options: ConfigOptions
) -> list[dict[str, str]]:
    # The script logs in as `admin` over loopback (why: templates/cloud-init/backup.sh.j2).
    if not _loopback_admitted(options):
        raise ValueError(
            f"ConfigOptions.networks {options.networks} lacks 127.0.0.1: the backup logs in as "
            f"{ROLE_USERS['admin']!r} over loopback; add 127.0.0.1 to the networks"
        )
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
            user=ROLE_USERS["admin"],
            user_secret_arn=boot.secret_arns[SECRET_KEYS["admin"]],
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
    topology = in_domain(topology, boot.domain)
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
            ssm_version=SSM_AGENT_VERSION,
            ssm_fpr=SSM_AGENT_KEY_FINGERPRINT,
            ssm_key=SSM_AGENT_KEY_FILE,
            cw_version=CW_AGENT_VERSION,
            cw_fpr=CW_AGENT_KEY_FINGERPRINT,
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
            tcp_port=topology.ports.tcp,
        ),
    )
    files += [
        _file(CA_FILE, boot.ca_cert_pem),
        _file(CW_AGENT_FILE, json.dumps(cw_agent_config(options.data_dir)) + "\n"),
        _file(SSM_AGENT_KEY_FILE, ssm_agent_key()),
        _file(SETUP, setup, "0755"),
        _file(FETCH_SECRETS, fetch, "0755"),
        _file(
            "/etc/systemd/system/adpulse-secrets.service",
            render("cloud-init/adpulse-secrets.service.j2", script=FETCH_SECRETS),
        ),
        _file(
            "/etc/systemd/system/adpulse-secrets-refresh.service",
            render("cloud-init/adpulse-secrets-refresh.service.j2", script=FETCH_SECRETS),
        ),
        _file(
            "/etc/systemd/system/adpulse-secrets-refresh.timer",
            render("cloud-init/adpulse-secrets-refresh.timer.j2", delay=REFRESH_DELAY),
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
        # loopback and remote hosts, so `ch-1.<domain>` must resolve (private zone) to the VPC
        # address. Every node is named by that FQDN in the configs (`in_domain`): no DHCP
        # search domain needed, and the name is a SAN of each certificate (stacks/tls.py).
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


def in_domain(topology: Topology, domain: str) -> Topology:
    """`topology` with its nodes in `domain` (the stack's private zone); one that already names
    a domain must name this one."""
    if topology.domain and topology.domain != domain:
        raise ValueError(
            f"topology domain {topology.domain!r} differs from the nodes' domain {domain!r} "
            "(adpulse:internalDomain); drop the topology's domain or make them equal"
        )
    return dataclasses.replace(topology, domain=domain)


def backup_host(topology: Topology) -> str:
    """The replica that runs the backup timer: the first host of the first shard."""
    return topology.shards[0][0]
