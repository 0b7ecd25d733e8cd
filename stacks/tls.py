"""A private CA for ClickHouse and one server certificate per node (pulumi-tls).

Clients (`clickhouses://`, port 9440, and HTTPS on 8443) and the other nodes reach a node by its
FQDN, `<host>.<adpulse:internalDomain>`: the name `clickhouse_url`, `clickhouse_hosts` and the
configs give. Each certificate names that FQDN, the topology name (`ch-1`, for a person on a host
with the search domain) and localhost. The CA's certificate is public and exported as
`clickhouse_ca_pem` for clients to trust; the CA key lives only in the (encrypted) Pulumi state.
Each node's private key and certificate go to a Secrets Manager secret of their own that the node
reads, so no key is ever in user data.

Rotation: a certificate is re-issued by the `pulumi up` that runs within `RENEW_HOURS` of its
expiry, which writes it to the node's secret. Running nodes fetch their secret daily
(`adpulse-secrets-refresh.timer`, at a random time within 4 hours of midnight UTC, as well as
`adpulse-secrets.service` at every boot); when the key or certificate changed, the fetch replaces
the files and runs `SYSTEM RELOAD CONFIG`, so new TLS connections get the new certificate within
a day, and nothing restarts (templates/cloud-init/fetch-secrets.sh.j2). `systemctl start
adpulse-secrets-refresh` on a node takes a new certificate at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls
from pulumi import ResourceOptions

from stacks.secret_store import RECOVERY_WINDOW_DAYS

CA_HOURS = 10 * 365 * 24
CERT_HOURS = 2 * 365 * 24
RENEW_HOURS = 30 * 24
_SERVER_USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]


def _private_key(name: str, opts: ResourceOptions) -> tls.PrivateKey:
    # P-256 ECDSA: every TLS 1.2+ client speaks it, and it signs faster than RSA-2048.
    return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve="P256", opts=opts)


def tls_bundle(private_key_pem: str, cert_pem: str) -> str:
    """What a node's secret holds: its key, then its certificate; `openssl pkey` and
    `openssl x509` each read their part of it."""
    return private_key_pem.rstrip("\n") + "\n" + cert_pem.rstrip("\n") + "\n"


@dataclass
class ClusterTlsArgs:
    hosts: Sequence[str]  # plain: one certificate and one secret each
    domain: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # Secrets get `<prefix>/clickhouse-tls-<host>-<random>`: a destroyed stack's names, still in
    # their recovery window, never block the next `pulumi up`.
    secret_prefix: str


class ClusterTls(pulumi.ComponentResource):
    """The CA, and per host a key, a CA-signed certificate and the secret that holds both."""

    def __init__(
        self, name: str, args: ClusterTlsArgs, opts: ResourceOptions | None = None
    ) -> None:
        super().__init__("adpulse:tls:ClusterTls", name, None, opts)
        child = ResourceOptions(parent=self)
        ca_key = _private_key(f"{name}-ca-key", child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name="adpulse ClickHouse CA", organization="adpulse"
            ),
            validity_period_hours=CA_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        self.ca_cert_pem: pulumi.Output[str] = ca.cert_pem
        self.certs: dict[str, pulumi.Output[str]] = {}
        self.secret_arns: dict[str, pulumi.Output[str]] = {}
        for host in args.hosts:
            key = _private_key(f"{name}-{host}-key", child)
            request = tls.CertRequest(
                f"{name}-{host}-csr",
                private_key_pem=key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=host, organization="adpulse"),
                dns_names=[host, pulumi.Output.concat(host, ".", args.domain), "localhost"],
                ip_addresses=["127.0.0.1"],
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{host}-cert",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=CERT_HOURS,
                early_renewal_hours=RENEW_HOURS,
                allowed_uses=_SERVER_USES,
                opts=child,
            )
            secret = aws.secretsmanager.Secret(
                f"{name}-{host}-secret",
                name_prefix=f"{args.secret_prefix}/clickhouse-tls-{host}-",
                description=f"TLS key and certificate of ClickHouse node {host}",
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=RECOVERY_WINDOW_DAYS,
                opts=child,
            )
            bundle: pulumi.Output[str] = pulumi.Output.all(
                key.private_key_pem, cert.cert_pem
            ).apply(lambda pems: tls_bundle(pems[0], pems[1]))
            aws.secretsmanager.SecretVersion(
                f"{name}-{host}-secret-version",
                secret_id=secret.id,
                # Secret already (the key is), and stays one whatever pulumi-tls marks.
                secret_string=bundle.apply(pulumi.Output.secret),
                opts=ResourceOptions(parent=secret),
            )
            self.certs[host] = cert.cert_pem
            self.secret_arns[host] = secret.arn
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_arns": self.secret_arns})
