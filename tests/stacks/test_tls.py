"""TLS inside the VPC: a private CA, one certificate per ClickHouse node, keys only in Secrets
Manager, the CA exported for clients, and every node name the stack hands out in its node's
certificate."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pulumi import Output

import stacks.tls
from adpulse.clickhouse.url import NativeTarget, parse_clickhouse_url
from adpulse.topology import load_topology
from stacks.cluster_shape import TOPOLOGY
from stacks.inventory import Inventory
from stacks.mocks import Mocks, Recorded, unwrap
from stacks.node_backup import BackupPlan
from stacks.tls import CERT_HOURS, RENEW_HOURS, tls_bundle
from stacks.userdata import node_user_data
from tests.stacks.conftest import CONFIG, SECRETS, of_type, pulumi_test, run_program, secret_value
from tests.stacks.test_userdata import CONFIG_FILE, clickhouse_user_data, files_of, make_boot

HOSTS = list(TOPOLOGY.hosts)
ROOT = Path(__file__).resolve().parents[2]


def _one(mocks: Mocks, name: str) -> Recorded:
    found = [r for r in mocks.resources if r.name == name]
    assert len(found) == 1, f"{name}: {len(found)} resources"
    return found[0]


def test_the_ca_is_a_self_signed_signing_certificate(mocks: Mocks) -> None:
    (ca,) = of_type(mocks, "tls:index/selfSignedCert:SelfSignedCert")
    assert ca.inputs["isCaCertificate"] is True
    assert "cert_signing" in ca.inputs["allowedUses"]
    key = _one(mocks, "adpulse-tls-ca-key")
    assert unwrap(ca.inputs["privateKeyPem"]) == key.outputs["privateKeyPem"]
    assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")


def test_each_node_has_a_ca_signed_server_certificate_for_its_names(mocks: Mocks) -> None:
    ca = _one(mocks, "adpulse-tls-ca")
    ca_key = _one(mocks, "adpulse-tls-ca-key")
    certs = of_type(mocks, "tls:index/locallySignedCert:LocallySignedCert")
    assert sorted(c.name for c in certs) == [f"adpulse-tls-{h}-cert" for h in HOSTS]
    for host in HOSTS:
        cert = _one(mocks, f"adpulse-tls-{host}-cert")
        request = _one(mocks, f"adpulse-tls-{host}-csr")
        key = _one(mocks, f"adpulse-tls-{host}-key")
        assert cert.inputs["caCertPem"] == ca.outputs["certPem"]
        assert unwrap(cert.inputs["caPrivateKeyPem"]) == ca_key.outputs["privateKeyPem"]
        assert cert.inputs["certRequestPem"] == request.outputs["certRequestPem"]
        assert unwrap(request.inputs["privateKeyPem"]) == key.outputs["privateKeyPem"]
        # Clients dial the FQDN (clickhouse_url); a person on a node may use the short name.
        assert request.inputs["dnsNames"][:2] == [host, f"{host}.adpulse.internal"]
        assert request.inputs["subject"]["commonName"] == host
        assert "server_auth" in cert.inputs["allowedUses"]
        assert cert.inputs["validityPeriodHours"] == CERT_HOURS
        assert cert.inputs["earlyRenewalHours"] == RENEW_HOURS


def test_every_name_the_nodes_use_for_each_other_is_in_that_nodes_certificate(
    mocks: Mocks,
) -> None:
    """The configs name nodes by FQDN (remote_servers, Keeper, raft, interserver host): each
    such name must be a SAN of the named node's certificate, or TLS host checks would fail."""
    sans = {h: _one(mocks, f"adpulse-tls-{h}-csr").inputs["dnsNames"] for h in HOSTS}
    nodes = clickhouse_user_data(of_type(mocks, "aws:ec2/instance:Instance"))
    assert sorted(nodes) == HOSTS
    for host, user_data in nodes.items():
        root = ET.fromstring(files_of(user_data)[CONFIG_FILE])
        named = [
            e.text or ""
            for e in root.iter()
            if e.tag in ("host", "hostname", "interserver_http_host")
        ]
        # 1x3 with Keeper on every node: each node names all three (replicas, Keeper, raft).
        assert set(named) == {f"{h}.adpulse.internal" for h in HOSTS}, host
        for name in named:
            assert "." in name, f"{host} names {name!r} without its domain"
            assert name in sans[name.split(".")[0]], f"{name} is not in its certificate"


def test_node_keys_live_in_their_own_kms_encrypted_secret(
    program: ModuleType, mocks: Mocks
) -> None:
    key_arn_id = "adpulse-key-key-id"
    for host in HOSTS:
        secret = _one(mocks, f"adpulse-tls-{host}-secret")
        assert secret.inputs["kmsKeyId"].endswith(key_arn_id), "the stack's own KMS key"
        assert secret.inputs["namePrefix"] == f"adpulse-test/clickhouse-tls-{host}-"
        version = _one(mocks, f"adpulse-tls-{host}-secret-version")
        bundle = secret_value(version.inputs["secretString"])  # fails unless marked secret
        key = _one(mocks, f"adpulse-tls-{host}-key").outputs["privateKeyPem"]
        cert = _one(mocks, f"adpulse-tls-{host}-cert").outputs["certPem"]
        assert bundle == tls_bundle(key, cert)


def test_the_node_role_may_read_exactly_the_tls_secrets(mocks: Mocks) -> None:
    policy = _one(mocks, "adpulse-tls-read")
    assert policy.inputs["role"] == _one(mocks, "adpulse-clickhouse-role").outputs["name"]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == [
        _one(mocks, f"adpulse-tls-{h}-secret").outputs["arn"] for h in HOSTS
    ]


@pulumi_test
def test_the_ca_certificate_is_exported_in_clear_for_clients(
    outputs: dict[str, Any], mocks: Mocks
) -> Output[None]:
    ca = _one(mocks, "adpulse-tls-ca").outputs["certPem"]

    def check(pem: str) -> None:
        assert pem == ca
        assert "PRIVATE KEY" not in pem

    exported = outputs["clickhouse_ca_pem"]
    return Output.from_input(exported).apply(check)


def test_openssl_splits_a_bundle_into_the_key_and_the_certificate(tmp_path: Path) -> None:
    """What the node's adpulse-fetch-secrets does with the secret's value."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=ch-1", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    bundle = tls_bundle(key.read_text(), cert.read_text())

    def run(*args: str) -> str:
        return subprocess.run(
            ["openssl", *args], input=bundle, capture_output=True, text=True, check=True
        ).stdout

    assert run("x509") == cert.read_text()
    assert run("pkey") == run_on(key, "pkey")


def run_on(path: Path, command: str) -> str:
    return subprocess.run(
        ["openssl", command, "-in", str(path)], capture_output=True, text=True, check=True
    ).stdout


# --- every node name the stack exports for clients: the FQDN, and in that node's certificate ---

OTHER_DOMAIN = "db.corp.example"
# clickhouse_hosts fields that are not host names (an IP is not checked against DNS SANs).
_NOT_NAMES = {"instance_id", "private_ip", "availability_zone"}


@pytest.fixture(scope="module")
def other_domain_inventory() -> Inventory:
    """2 shards x 2 replicas in a domain of the operator's choosing, not the default."""
    config = {
        **CONFIG,
        "adpulse:clickhouseTopology": "2x2",
        "adpulse:internalDomain": OTHER_DOMAIN,
    }
    return run_program(config, list(SECRETS))


def exported_names(inventory: Inventory, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(node, export, name) for every name of a ClickHouse node in the outputs clients read."""
    exports = {e.name: e.value for e in inventory.exports}
    target = parse_clickhouse_url(exports["clickhouse_url"])
    assert isinstance(target, NativeTarget)
    found = [(name.split(".")[0], "clickhouse_url", name) for name, _ in target.hosts]
    for node in exports["clickhouse_hosts"]:
        found += [
            (node["name"], f"clickhouse_hosts.{key}", value)
            for key, value in node.items()
            if key not in _NOT_NAMES
        ]
    addresses = json.loads(exports["clickhouse_topology"]).get("addresses", {})
    found += [(host, "clickhouse_topology", name) for host, name in addresses.items()]
    path = tmp_path / "topology.toml"
    path.write_text(exports["clickhouse_topology_toml"])
    topology = load_topology(str(path))
    found += [(h, "clickhouse_topology_toml", topology.address(h)) for h in topology.hosts]
    return found


@pytest.mark.parametrize(
    ("stack", "domain"),
    [("prod_inventory", "adpulse.internal"), ("other_domain_inventory", OTHER_DOMAIN)],
)
def test_every_clickhouse_name_a_client_is_given_is_the_fqdn_in_its_certificate(
    stack: str, domain: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """clickhouse_url, clickhouse_hosts and the topology exports name each node by
    `<host>.<adpulse:internalDomain>`, which resolves without the DHCP search domain, and that
    name is a SAN of the node's certificate, so the client's TLS host check passes."""
    inventory: Inventory = request.getfixturevalue(stack)
    sans = {
        r.name.removeprefix("adpulse-tls-").removesuffix("-csr"): r.settings["dnsNames"]
        for r in inventory.of_type("tls:index/certRequest:CertRequest")
    }
    names = exported_names(inventory, tmp_path)
    for host, export, name in names:
        assert name in sans[host], f"{export}: {name!r} is not a SAN of {host}: {sans[host]}"
        if export != "clickhouse_hosts.name":  # the topology's name for the node, not an address
            assert name == f"{host}.{domain}", (
                f"{export} gives {name!r}: resolving it would need the DHCP search domain"
            )
    # Every export names every node (nothing above was skipped for want of a name).
    where = {export for _, export, _ in names}
    assert where == {
        "clickhouse_url",
        "clickhouse_hosts.name",
        "clickhouse_hosts.fqdn",
        "clickhouse_topology",
        "clickhouse_topology_toml",
    }
    for export in where:
        assert sorted(h for h, e, _ in names if e == export) == sorted(sans), export


# --- the rotation docs: what reaches a running node, and how ------------------------------


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=\.)\s+", " ".join(text.split()))


def test_the_rotation_docs_describe_the_refresh_the_nodes_run() -> None:
    """stacks/tls.py and the README's "After `pulumi up`" name the daily refresh that reloads
    a renewed certificate in place, name only units the nodes have, and never send the reader
    to restart anything for a certificate."""
    plan = BackupPlan(bucket="adpulse-test-backups", region="us-east-1")
    # The backup replica: it has every unit any node has.
    user_data = node_user_data(make_boot("ch-1", plan), TOPOLOGY)
    units = {
        Path(path).name
        for path in files_of(user_data)
        if path.startswith("/etc/systemd/system/") and path.endswith((".service", ".timer"))
    }
    readme = (ROOT / "stacks" / "README.md").read_text()
    after_up = readme.split("\n## After `pulumi up`\n", 1)[1].split("\n## ", 1)[0]
    docs = {"stacks/tls.py": stacks.tls.__doc__ or "", "README, After `pulumi up`": after_up}
    for where, text in docs.items():
        named = set(re.findall(r"adpulse-[a-z-]+\.(?:service|timer)", text))
        assert "adpulse-secrets-refresh.timer" in named, f"{where} does not name the refresh"
        assert named <= units, f"{where} names units no node has: {sorted(named - units)}"
        assert "SYSTEM RELOAD CONFIG" in text or "reloads" in text, where
        for sentence in _sentences(text):
            if "certificate" in sentence.lower():
                assert "systemctl restart" not in sentence, f"{where}: {sentence}"
