"""TLS inside the VPC: a private CA, one certificate per ClickHouse node, keys only in Secrets
Manager, and the CA exported for clients."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

from pulumi import Output

from stacks.cluster_shape import TOPOLOGY
from stacks.mocks import Mocks, Recorded, unwrap
from stacks.tls import CERT_HOURS, RENEW_HOURS, tls_bundle
from tests.stacks.conftest import of_type, pulumi_test, secret_value
from tests.stacks.test_userdata import CONFIG_FILE, clickhouse_user_data, files_of

HOSTS = list(TOPOLOGY.hosts)


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
        # Clients dial `ch-1:9440` (clickhouse_url) or the FQDN; both must verify.
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
