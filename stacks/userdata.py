"""Each ClickHouse node's user data: a #cloud-config that leaves the node installed and running.

Pure: plain values in, text out; `stacks/clickhouse.py` resolves the Outputs and calls
`node_user_data`. The server's config, users, macros and Keeper raft settings are the files
`adpulse config render` writes (`render_node_configs`, same templates, same options), so a node
built here and one configured by hand from the CLI cannot drift apart; here the topology carries
the stack's domain, so nodes name each other by FQDN. The user data holds secret ARNs only:
`adpulse-secrets.service` fetches the values at every boot and `adpulse-secrets-refresh.timer`
daily, which brings renewed certificates to running nodes. The agents' pins are in
`stacks/agents.py`, the backup timer's files in `stacks/node_backup.py`; `stacks/cloud_config.py`
encodes the document and gzips it for EC2, whose 16 KiB limit `node_user_data` checks on the
gzipped size. To read a node's files as it got them: `sudo cloud-init query userdata` on the host
(decompressed), or the paths under write_files.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adpulse.clickhouse.config import SECRET_ENV, ConfigOptions, render_node_configs
from adpulse.render import render
from adpulse.topology import Topology
from stacks.agents import (
    CW_AGENT_FILE,
    SSM_AGENT_KEY_FILE,
    cw_agent_config,
    setup_pins,
    ssm_agent_key,
)
from stacks.cloud_config import check_fits, document, write_file
from stacks.cluster_shape import in_domain
from stacks.node_backup import BackupPlan, backup_host, s3_settings, timer_files

CONFIG_DIR = "/etc/clickhouse-server"
ENV_FILE = "/run/adpulse/clickhouse.env"
CA_FILE = "/usr/local/share/ca-certificates/adpulse-clickhouse-ca.crt"
SETUP = "/usr/local/sbin/adpulse-node-setup"
FETCH_SECRETS = "/usr/local/sbin/adpulse-fetch-secrets"
DISK_FSTYPE = "ext4"
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


def _shell(**values: str | int) -> dict[str, str]:
    """Template values for shell scripts, each quoted as one word."""
    return {key: shlex.quote(str(value)) for key, value in values.items()}


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


def node_user_data(boot: NodeBoot, topology: Topology, options: ConfigOptions | None = None) -> str:
    """The #cloud-config for `boot.host`, as cloud-init reads it (EC2 gets `for_ec2` of it);
    raises ValueError for a host not in the topology, or a document EC2 would refuse."""
    options = options or ConfigOptions()
    if boot.host not in topology.hosts:
        raise ValueError(f"{boot.host!r} is not a host of topology {topology.hosts}")
    topology = in_domain(topology, boot.domain)
    rendered = render_node_configs(topology, options)
    prefix = f"{boot.host}/"
    files = [
        write_file(f"{CONFIG_DIR}/{relative.removeprefix(prefix)}", text)
        for relative, text in rendered.items()
        if relative.startswith(prefix)
    ]
    plan = boot.backup
    runs_backups = plan is not None and boot.host == backup_host(topology)
    if plan is not None and (runs_backups or len(topology.shards) > 1):
        files.append(s3_settings(plan))
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
            **setup_pins(),
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
        write_file(CA_FILE, boot.ca_cert_pem),
        write_file(CW_AGENT_FILE, json.dumps(cw_agent_config(options.data_dir)) + "\n"),
        write_file(SSM_AGENT_KEY_FILE, ssm_agent_key()),
        write_file(SETUP, setup, "0755"),
        write_file(FETCH_SECRETS, fetch, "0755"),
        write_file(
            "/etc/systemd/system/adpulse-secrets.service",
            render("cloud-init/adpulse-secrets.service.j2", script=FETCH_SECRETS),
        ),
        write_file(
            "/etc/systemd/system/adpulse-secrets-refresh.service",
            render("cloud-init/adpulse-secrets-refresh.service.j2", script=FETCH_SECRETS),
        ),
        write_file(
            "/etc/systemd/system/adpulse-secrets-refresh.timer",
            render("cloud-init/adpulse-secrets-refresh.timer.j2", delay=REFRESH_DELAY),
        ),
        write_file(
            "/etc/systemd/system/clickhouse-server.service.d/adpulse.conf",
            render(
                "cloud-init/clickhouse-server.conf.j2", data_dir=options.data_dir, env_file=ENV_FILE
            ),
        ),
    ]
    if plan is not None and runs_backups:
        admin_arn = boot.secret_arns[SECRET_KEYS["admin"]]
        files += timer_files(plan, boot.host, admin_arn, topology, options)
    config = {
        "hostname": boot.host,
        "fqdn": topology.address(boot.host),
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
    text = document(header, config)
    check_fits(text, boot.host)
    return text
