"""`adpulse schema ... --stack` and `adpulse kafka topics apply --stack`: admin commands run on
the stack's first app host (a real Debian host with a real release installed, its own venv,
as the service user), against services that host reaches at the bridge's gateway address.

- Kafka: tansu on the gateway, PLAINTEXT (tansu 0.6 serves no TLS). The topics the host's
  command creates are listed from this process. The production shape, SASL_SSL with
  SCRAM-SHA-512, is run too: the host's librdkafka takes the config and the password, and its
  TLS handshake against a broker that never answers fails as one clear line (no MSK here).
- ClickHouse: Debian's clickhouse-server 18.16 behind a TLS-terminating forwarder named
  `ch-1.adpulse.internal`, with a certificate of a CA made here. So the host's client runs the
  production shape, `clickhouses://` to an FQDN on a TLS port, verified against the stack's CA
  that the command installs in the host's trust store, and logs in as `admin` with the password
  that came on stdin. What cannot be covered: 18.16 cannot hold adpulse's schema, so every
  migration stops at ClickHouse's own error (reported, one line), never applies; and TLS is
  ended by the forwarder, not by ClickHouse's own `tcp_port_secure`.

Secrets come from Secrets Manager (moto) by the ARNs in the outputs file, as in production.
"""

from __future__ import annotations

import datetime
import json
import shlex
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from adpulse.kafka.broker import local_broker
from adpulse.settings import load_settings
from cli import app
from deploy import layout, remote_admin
from deploy.install import install
from deploy.inventory import KAFKA_SCRAM, POSTGRES_MASTER, StackInventory, load_outputs_file
from deploy.release import Release, build_release
from deploy.remote_admin import (
    CA_FILE,
    RemoteAdminError,
    apply_topics_on_stack,
    migrate_on_stack,
    run_admin,
)
from deploy.ssh import Connection, Target, connect
from deploy.stack_facts import STACK_SECRETS
from deploy.stack_secrets import DEPLOY_SECRETS
from tests.conftest import fake_aws_credentials
from tests.support.clickhouse_server import ROLE_PASSWORDS, free_port
from tests.support.forward import forward
from tests.support.hosts import Host

PLATFORM = "manylinux_2_36_x86_64"  # the test hosts: Debian 12 (glibc 2.36) on x86_64
STACK = "adm"
REGION = "us-east-1"
PROD = Path(__file__).parent / "fixtures" / "outputs-prod.json"
CH_NAME = "ch-1.adpulse.internal"
SCRAM_PASSWORD = 'adm-scram "pa$$" `w0rd` \\ 7Tq'  # what sh and env files must escape
# Distinctive values, so a grep for them cannot match by accident; the admin password is the
# one the test ClickHouse holds, URL- and shell-hostile on purpose.
SECRETS = {key: f"adm-{key}-Zq8Vx2Lp" for key in sorted({*STACK_SECRETS, *DEPLOY_SECRETS})} | {
    "clickhouse-admin-password": ROLE_PASSWORDS["admin"],
    KAFKA_SCRAM: json.dumps({"username": "adpulse", "password": SCRAM_PASSWORD}),
    POSTGRES_MASTER: json.dumps({"username": "postgres", "password": "adm-master-Wc4Rt9"}),
}
# What an admin command may hold: the ClickHouse admin password and the Kafka SCRAM password.
ADMIN_VALUES = (ROLE_PASSWORDS["admin"], SCRAM_PASSWORD)


def secret_texts() -> list[str]:
    """Every secret value, and the passwords inside the JSON logins."""
    found = list(SECRETS.values())
    found += [json.loads(SECRETS[key])["password"] for key in (KAFKA_SCRAM, POSTGRES_MASTER)]
    return found


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- the host ---------------------------------------------------------------------------------


@dataclass
class AppHost:
    host: Host
    conn: Connection  # as root, for the test's own looks
    state_dir: Path  # holds known_hosts/<STACK>
    version: str
    gateway: str

    def cli(self, outputs: Path) -> list[str]:
        """The stack options that reach this host as `app-1` of `outputs`."""
        return [
            *("--stack", STACK, "--outputs", str(outputs), "--ssh-user", "root"),
            *("--ssh-key", str(self.host.ssh_key_path), "--state-dir", str(self.state_dir)),
        ]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    # allow_dirty: other work is under way in this tree while the tests run
    return build_release(tmp_path_factory.mktemp("release"), platform=PLATFORM, allow_dirty=True)


@pytest.fixture(scope="module")
def app_host(
    test_hosts: list[Host], release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppHost]:
    """The second test host as the stack's only app host: the release installed, `current`
    pointing at it and the service user there, as a deploy leaves it; all undone after."""
    host = test_hosts[1]
    state = tmp_path_factory.mktemp("state")
    known = state / "known_hosts" / STACK
    known.parent.mkdir(parents=True)
    known.write_text(host.known_hosts_line + "\n")
    gateway = host.ip.rsplit(".", 1)[0] + ".1"
    with connect(Target("app-1", host.ip, user="root"), STACK, known, host.ssh_key_path) as conn:
        before = conn.run(f"readlink {layout.CURRENT} || true").stdout.strip()
        ours = install(conn, release).endswith(
            f"installed in {layout.release_dir(release.version)}"
        )
        new_user = conn.run(f"id -u {layout.SERVICE_USER}", check=False).code != 0
        if new_user:
            conn.run(
                f"useradd --system --no-create-home --shell /usr/sbin/nologin {layout.SERVICE_USER}"
            )
        conn.run("; ".join(layout.switch_commands(release.version)))
        try:
            yield AppHost(host, conn, state, release.version, gateway)
        finally:
            undo = [f"sed -i '/ {CH_NAME}$/d' /etc/hosts"]
            undo += [f"rm -f {CA_FILE}", "update-ca-certificates --fresh >/dev/null"]
            undo.append(
                f"ln -sfn {shlex.quote(before)} {layout.CURRENT}"
                if before
                else f"rm -f {layout.CURRENT}"
            )
            if ours:
                undo.append(f"rm -rf {layout.release_dir(release.version)}")
            if new_user:
                undo.append(f"userdel {layout.SERVICE_USER}")
            conn.run("; ".join(undo))


@pytest.fixture
def aws_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """SECRETS in Secrets Manager (moto); their ARNs by key."""
    import boto3
    from moto import mock_aws

    fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        yield {
            key: client.create_secret(Name=f"adpulse-{STACK}/{key}", SecretString=value)["ARN"]
            for key, value in SECRETS.items()
        }


def write_outputs(folder: Path, app: AppHost, arns: dict[str, str], **changes: Any) -> Path:
    """The prod outputs fixture as stack STACK: `app` its one app host, the secrets' ARNs
    `arns`, and `changes` (endpoints) on top."""
    doc: dict[str, Any] = json.loads(PROD.read_text())
    doc |= {
        "stack_name": STACK,
        "app_hosts": [
            {
                "name": "app-1",
                "instance_id": "i-app-1",
                "private_ip": app.host.ip,
                "availability_zone": "us-east-1a",
            }
        ],
        "clickhouse_secret_arns": {key: arns.get(key, f"arn:{key}") for key in STACK_SECRETS},
        "kafka_scram_secret_arn": arns.get(KAFKA_SCRAM, "arn:scram"),
        "postgres_master_secret_arn": arns.get(POSTGRES_MASTER, "arn:master"),
        "topic_replication_factor": 1,
        **changes,
    }
    path = folder / f"outputs-{len(list(folder.glob('outputs-*.json')))}.json"
    path.write_text(json.dumps(doc))
    return path


def inventory(path: Path) -> StackInventory:
    return replace(load_outputs_file(path, STACK), secrets=dict(SECRETS))


# --- Kafka ------------------------------------------------------------------------------------


@pytest.fixture
def broker(app_host: AppHost) -> Iterator[str]:
    """A fresh tansu on the gateway, where the host reaches it; its bootstrap address."""
    with local_broker(free_port(), host=app_host.gateway) as bootstrap:
        yield bootstrap


def topics_of(bootstrap: str) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log.connection.close": False})
    listed = admin.list_topics(timeout=10).topics
    return {name: len(t.partitions) for name, t in listed.items() if not name.startswith("__")}


def test_topics_apply_on_the_stack_creates_the_topics_from_the_host(
    app_host: AppHost, broker: str, aws_secrets: dict[str, str], tmp_path: Path
) -> None:
    outputs = write_outputs(
        tmp_path, app_host, aws_secrets, kafka_bootstrap=broker, kafka_security_protocol="PLAINTEXT"
    )
    code, out, err = run("kafka", "topics", "apply", *app_host.cli(outputs))
    assert (code, out) == (0, "ad-events: created\nad-events-dlq: created\n"), err
    assert err == (
        f"running `adpulse kafka topics apply` on app-1 ({app_host.host.ip}), "
        f"release {app_host.version}\n"
    )
    assert topics_of(broker) == {"ad-events": 6, "ad-events-dlq": 3}

    code, out, err = run("kafka", "topics", "apply", *app_host.cli(outputs), "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"name": "ad-events", "action": "ok", "problems": []},
        {"name": "ad-events-dlq", "action": "ok", "problems": []},
    ]
    [event] = [
        e for e in audit_events(app_host) if e.get("command") == "adpulse kafka topics apply"
    ][-1:]
    assert (event["outcome"], event["release"], event["stack"]) == ("ok", app_host.version, STACK)


def test_a_topic_that_differs_stops_the_deploy_s_topic_step_naming_it(
    app_host: AppHost, broker: str, tmp_path: Path
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic("ad-events", 2, 1)])["ad-events"].result(10)
    del admin  # its connections close now, not after the broker has stopped
    outputs = write_outputs(
        tmp_path, app_host, {}, kafka_bootstrap=broker, kafka_security_protocol="PLAINTEXT"
    )
    with pytest.raises(RemoteAdminError) as err:
        apply_topics_on_stack(app_host.conn, inventory(outputs), app_host.version)
    assert str(err.value) == (
        f"stack {STACK}: topics differ from the settings (ad-events: partitions: broker has 2, "
        "settings want 6); existing topics are never altered: change the topic or the settings, "
        "then run again"
    )
    assert topics_of(broker) == {"ad-events": 2, "ad-events-dlq": 3}  # the missing one made


def audit_events(app: AppHost) -> list[dict[str, Any]]:
    text = app.conn.run(f"cat {layout.AUDIT_LOG} 2>/dev/null || true").stdout
    return [json.loads(line) for line in text.splitlines()]


def test_the_production_kafka_shape_takes_the_scram_login_and_no_secret_shows_anywhere(
    app_host: AppHost, aws_secrets: dict[str, str], tmp_path: Path
) -> None:
    # A broker that accepts connections and never answers: the command runs for its whole
    # timeout, long enough to look at the host while it does.
    silent = socket.create_server((app_host.gateway, 0))
    bootstrap = f"{app_host.gateway}:{silent.getsockname()[1]}"
    outputs = write_outputs(tmp_path, app_host, aws_secrets, kafka_bootstrap=bootstrap)
    assert inventory(outputs).kafka_security_protocol == "SASL_SSL"
    since = app_host.conn.run("date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    done: list[tuple[int, str, str]] = []
    worker = threading.Thread(
        target=lambda: done.append(run("kafka", "topics", "apply", *app_host.cli(outputs)))
    )
    worker.start()
    snapshots, environ = [], ""
    try:
        while worker.is_alive():
            snapshots.append(app_host.host.ssh("ps -eo args").stdout)
            if not environ and "kafka topics apply" in snapshots[-1]:
                pid = app_host.host.ssh(f"pgrep -u {layout.SERVICE_USER} -f 'kafka topics apply'")
                if pid.stdout.strip():
                    environ = app_host.host.ssh(f"cat /proc/{pid.stdout.split()[0]}/environ").stdout
            time.sleep(0.2)
    finally:
        worker.join()
        silent.close()
    [(code, out, err)] = done
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith(
        f"error: app-1: `adpulse kafka topics apply` (release {app_host.version}) failed: "
        f"Kafka at {bootstrap} did not answer"
    )
    # The command ran as the service user with exactly the admin secrets in its environment.
    assert any("/venv/bin/adpulse kafka topics apply --json" in s for s in snapshots)
    variables = dict(line.split("=", 1) for line in environ.split("\0") if "=" in line)
    assert variables["ADPULSE_KAFKA_SASL_PASSWORD"] == SCRAM_PASSWORD
    assert variables["ADPULSE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert variables["ADPULSE_CLICKHOUSE_ADMIN_PASSWORD"] == ROLE_PASSWORDS["admin"]
    assert {v for v in secret_texts() if v in environ} == set(ADMIN_VALUES)
    # ... and nowhere else: not in `ps`, the audit log, the journal, or what the CLI printed.
    journal = app_host.conn.run(f"journalctl --no-pager -o cat --since '{since}'").stdout
    audit = app_host.conn.run(f"cat {layout.AUDIT_LOG}").stdout
    assert '"outcome":"failed (exit 1)"' in audit.splitlines()[-1]
    for text in (*snapshots, journal, audit, out, err):
        leaked = [v for v in secret_texts() if v in text]
        assert not leaked, text


# --- ClickHouse -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    ca_pem: str
    cert_pem: bytes
    key_pem: bytes


def make_tls(name: str) -> Tls:
    """A CA, and a server certificate it signs for `name`."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), False
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("adm test CA", ca_key, "adm test CA", ca_key, True)
    leaf = cert(name, key, "adm test CA", ca_key, False)
    return Tls(
        ca.public_bytes(serialization.Encoding.PEM).decode(),
        leaf.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@contextmanager
def tls_forward(host: str, to_port: int, tls: Tls, folder: Path) -> Iterator[int]:
    """TLS on host:<port> (the certificate of `tls`), relayed in clear to 127.0.0.1:to_port,
    as a ClickHouse node's secure port; yields the port."""
    (folder / "cert.pem").write_bytes(tls.cert_pem)
    (folder / "key.pem").write_bytes(tls.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    with forward(host, 0, to_port, tls=context) as where:
        yield int(where.rsplit(":", 1)[1])


@dataclass(frozen=True)
class SecureClickHouse:
    url: str
    ca_pem: str

    def outputs(
        self, folder: Path, app: AppHost, arns: dict[str, str] | None = None, ca_pem: str = ""
    ) -> Path:
        """`write_outputs` with this ClickHouse as the stack's, trusted by its CA (or `ca_pem`)."""
        return write_outputs(
            folder,
            app,
            arns or {},
            clickhouse_url=self.url,
            clickhouse_ca_pem=ca_pem or self.ca_pem,
        )


@pytest.fixture(scope="module")
def clickhouse(
    app_host: AppHost, native_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureClickHouse]:
    """The test ClickHouse as a stack's node: `clickhouses://` to CH_NAME, which the host
    resolves to the gateway, with a certificate of the stack's CA."""
    tls = make_tls(CH_NAME)
    app_host.conn.run(f"echo '{app_host.gateway} {CH_NAME}' >> /etc/hosts")
    with tls_forward(app_host.gateway, native_port, tls, tmp_path_factory.mktemp("tls")) as port:
        yield SecureClickHouse(f"clickhouses://ingest@{CH_NAME}:{port}/adpulse", tls.ca_pem)


def test_schema_status_reaches_clickhouse_over_tls_as_admin_and_reports_its_error(
    app_host: AppHost, clickhouse: SecureClickHouse, aws_secrets: dict[str, str], tmp_path: Path
) -> None:
    outputs = clickhouse.outputs(tmp_path, app_host, aws_secrets)
    app_host.conn.run(f"rm -f {CA_FILE} && update-ca-certificates --fresh >/dev/null")
    code, out, err = run("schema", "status", *app_host.cli(outputs))
    # Logged in as admin over TLS (a refused login is another error: the next test); 18.16
    # then refuses the ledger's DDL, and that is what the deployer reads.
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"running `adpulse schema status` on app-1 ({app_host.host.ip}), release "
        f"{app_host.version}",
        f"error: app-1: `adpulse schema status` (release {app_host.version}) failed: "
        "DB::Exception: Requested cluster 'adpulse' not found.",
    ]
    # The stack's CA went into the host's trust store, once.
    assert app_host.conn.run(f"cat {CA_FILE}").stdout == clickhouse.ca_pem
    inv = inventory(outputs)
    with pytest.raises(RemoteAdminError, match="Requested cluster 'adpulse' not found"):
        run_admin(app_host.conn, inv, ["schema", "status"], changes=False)
    assert remote_admin.ensure_stack_files(app_host.conn, inv) == []


def test_a_wrong_admin_password_is_the_login_refusal_from_the_host(
    app_host: AppHost, clickhouse: SecureClickHouse, tmp_path: Path
) -> None:
    outputs = clickhouse.outputs(tmp_path, app_host)
    wrong = "not-the-admin-password-4Tz"
    inv = replace(inventory(outputs), secrets=SECRETS | {"clickhouse-admin-password": wrong})
    with pytest.raises(RemoteAdminError) as err:
        run_admin(app_host.conn, inv, ["schema", "status"], changes=False)
    message = str(err.value)
    assert message.startswith(
        f"app-1: `adpulse schema status` (release {app_host.version}) failed: "
    )
    assert f"ClickHouse at {CH_NAME}:" in message
    assert "refused the admin role's login as user 'admin' (wrong password" in message
    assert wrong not in message


def test_a_server_certificate_of_another_ca_is_refused(
    app_host: AppHost, clickhouse: SecureClickHouse, tmp_path: Path
) -> None:
    other = make_tls(CH_NAME).ca_pem
    outputs = clickhouse.outputs(tmp_path, app_host, ca_pem=other)
    try:
        with pytest.raises(RemoteAdminError, match="CERTIFICATE_VERIFY_FAILED"):
            run_admin(app_host.conn, inventory(outputs), ["schema", "status"], changes=False)
        assert app_host.conn.run(f"cat {CA_FILE}").stdout == other
    finally:
        app_host.conn.run(f"rm -f {CA_FILE} && update-ca-certificates --fresh >/dev/null")


def test_migrate_on_stack_runs_the_release_s_migrations_and_records_it(
    app_host: AppHost, clickhouse: SecureClickHouse, tmp_path: Path
) -> None:
    outputs = clickhouse.outputs(tmp_path, app_host)
    with pytest.raises(RemoteAdminError) as err:
        migrate_on_stack(app_host.conn, inventory(outputs), app_host.version)
    assert str(err.value) == (
        f"app-1: `adpulse schema migrate` (release {app_host.version}) failed: "
        "DB::Exception: Requested cluster 'adpulse' not found."
    )
    event = audit_events(app_host)[-1]
    assert (event["event"], event["command"], event["release"]) == (
        "admin",
        "adpulse schema migrate",
        app_host.version,
    )
    assert event["outcome"] == "failed (exit 1)"


def test_unlock_on_the_stack_runs_the_release_s_unlock_as_admin_and_records_it(
    app_host: AppHost, clickhouse: SecureClickHouse, aws_secrets: dict[str, str], tmp_path: Path
) -> None:
    outputs = clickhouse.outputs(tmp_path, app_host, aws_secrets)
    code, out, err = run("schema", "unlock", "--yes", *app_host.cli(outputs))
    # Logged in as admin over TLS (a refused login is another error); 18.16 has no query
    # parameters, so the lock's lookup stops at ClickHouse's own error, which the deployer
    # reads. The local unlock against a current engine is in tests/test_cli.py.
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"running `adpulse schema unlock --yes` on app-1 ({app_host.host.ip}), release "
        f"{app_host.version}",
        f"error: app-1: `adpulse schema unlock --yes` (release {app_host.version}) failed: "
        "DB::Exception: Syntax error: failed at position 52: {db:String} AND name = "
        "{t:String}. Unrecognized token.",
    ]
    event = audit_events(app_host)[-1]
    assert (event["event"], event["command"], event["release"], event["stack"]) == (
        "admin",
        "adpulse schema unlock --yes",
        app_host.version,
        STACK,
    )
    assert event["outcome"] == "failed (exit 1)"


# --- which release, and errors ----------------------------------------------------------------


def test_a_release_the_host_does_not_have_is_one_line_naming_those_it_has(
    app_host: AppHost, tmp_path: Path
) -> None:
    inv = inventory(write_outputs(tmp_path, app_host, {}))
    with pytest.raises(RemoteAdminError) as err:
        run_admin(app_host.conn, inv, ["schema", "status"], release="0123456789ab", changes=False)
    assert str(err.value) == (
        f"release 0123456789ab is not installed on app-1 (installed: {app_host.version}): "
        "install it with `adpulse deploy`, or name one of those"
    )


def test_a_host_without_a_current_release_says_to_deploy_first(
    app_host: AppHost, tmp_path: Path
) -> None:
    inv = inventory(write_outputs(tmp_path, app_host, {}))
    app_host.conn.run(f"rm {layout.CURRENT}")
    try:
        with pytest.raises(RemoteAdminError) as err:
            run_admin(app_host.conn, inv, ["schema", "status"], changes=False)
    finally:
        app_host.conn.run("; ".join(layout.switch_commands(app_host.version)))
    assert str(err.value) == (
        f"app-1 runs no release ({layout.CURRENT} is missing): deploy one first (`adpulse "
        f"deploy --stack {STACK}`), or name an installed one with --release: {app_host.version}"
    )


def test_the_ca_path_is_the_one_the_nodes_use() -> None:
    from stacks.userdata import CA_FILE as NODES_CA_FILE

    assert CA_FILE == NODES_CA_FILE


def test_the_host_s_unlock_advice_names_the_stack() -> None:
    """The host's release says "run `adpulse schema unlock`"; from the operator's machine that
    would unlock the local database, so the stack goes in."""
    from adpulse.clickhouse import migrate

    # The advice as the release words it (the translation must keep up with it).
    assert "run `adpulse schema unlock`" in Path(migrate.__file__).read_text()
    inv = load_outputs_file(PROD, "prod")
    said = "another migration holds the lock (x); wait for it, or if it crashed run "
    said += "`adpulse schema unlock`"
    assert remote_admin._for_this_machine(said, inv).endswith(
        "or if it crashed run `adpulse schema unlock --stack prod`"
    )


def test_the_admin_environment_reads_back_as_the_production_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prod shape: clickhouses:// on 9440 to the nodes' FQDNs as admin; SASL_SSL with
    SCRAM-SHA-512; values read back through sh exactly as sent."""
    import subprocess

    from adpulse.clickhouse.roles import clickhouse_target_for
    from adpulse.clickhouse.url import NativeTarget
    from adpulse.kafka.client_config import kafka_config

    doc = json.loads(PROD.read_text())
    doc["clickhouse_secret_arns"] = {key: f"arn:{key}" for key in STACK_SECRETS}
    (tmp_path / "o.json").write_text(json.dumps(doc))
    inv = replace(load_outputs_file(tmp_path / "o.json", "prod"), secrets=dict(SECRETS))
    env = remote_admin.admin_environment(inv)
    held = {v for v in secret_texts() if v in env.values()}
    assert held == set(ADMIN_VALUES)  # no service's secret
    shell = subprocess.run(
        ["sh", "-c", "set -a; . /dev/stdin; set +a; env -0"],
        input=remote_admin.environment_text(env),
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    read = dict(
        v.split("=", 1) for v in shell.stdout.decode().split("\0") if v.startswith("ADPULSE_")
    )
    assert read == env
    for name in list(read):
        monkeypatch.delenv(name, raising=False)
    for name, value in read.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    target = clickhouse_target_for(settings, "admin")
    assert isinstance(target, NativeTarget)
    assert (target.user, target.password, target.secure) == ("admin", ROLE_PASSWORDS["admin"], True)
    assert target.hosts == tuple((f"ch-{i}.adpulse.internal", 9440) for i in (1, 2, 3))
    config = kafka_config(settings)
    assert config["security.protocol"] == "SASL_SSL"
    assert (config["sasl.mechanism"], config["sasl.username"]) == ("SCRAM-SHA-512", "adpulse")
    assert config["sasl.password"] == SCRAM_PASSWORD
    script = remote_admin.admin_script("0123456789ab", ["schema", "migrate"])
    assert not [v for v in secret_texts() if v in script]
    assert script.endswith("venv/bin/adpulse schema migrate --json")
