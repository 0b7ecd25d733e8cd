"""Stack config: weak secrets and impossible values stop `pulumi up` with the key and the allowed
values named; the committed stack files load and hold no secret."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pytest
import yaml

from stacks.config import StackConfig, StackConfigError, load_stack_config
from stacks.config.names import name_prefix
from stacks.secret_store import SECRET_KEYS
from tests.stacks.conftest import CONFIG, SECRETS, set_config

Load = Callable[..., StackConfig]
ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = {stack: ROOT / f"Pulumi.{stack}.yaml" for stack in ("dev", "prod")}
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f2c55a4-1b2c-4d5e-8f90-a1b2c3d4e5f6"


@pytest.fixture
def load() -> Iterator[Load]:
    """Load the config with some keys changed (None removes one); restore the session's after."""

    def run(secret: bool = True, **changes: str | None) -> StackConfig:
        config = dict(CONFIG)
        for key, value in changes.items():
            full = key if ":" in key else f"adpulse:{key}"
            if value is None:
                config.pop(full, None)
            else:
                config[full] = value
        # secret=False: the changed keys were set without --secret.
        plain = {f"adpulse:{key}" for key in changes} if not secret else set()
        set_config(config, [k for k in SECRETS if k in config and k not in plain])
        return load_stack_config(pulumi.Config("adpulse"))

    yield run
    set_config(CONFIG, list(SECRETS))


def stack_file_config(stack: str) -> dict[str, str | None]:
    """A committed stack file's `adpulse:` keys, as `load` takes them."""
    raw = yaml.safe_load(STACK_FILES[stack].read_text())["config"]
    return {
        k.split(":", 1)[1]: str(v)
        for k, v in raw.items()
        if k.startswith("adpulse:") and not isinstance(v, dict)
    }


@pytest.mark.parametrize("key", [k.split(":")[1] for k in SECRETS])
def test_an_unset_secret_is_left_to_the_stack_to_generate(load: Load, key: str) -> None:
    secrets = load(**{key: None}).secrets
    unset = [f.name for f in dataclasses.fields(secrets) if getattr(secrets, f.name) is None]
    assert unset == [re.sub("([A-Z])", r"_\1", key).lower()]


def test_a_secret_stored_in_plain_text_is_refused(load: Load) -> None:
    with pytest.raises(StackConfigError, match="adpulse:clickhouseApiPassword is stored in plain"):
        load(secret=False, clickhouseApiPassword="api-R5t8Yu2Io4Pa6S")


@pytest.mark.parametrize("value", ["changeme", "short"])
def test_placeholder_or_short_passwords_are_refused(load: Load, value: str) -> None:
    with pytest.raises(StackConfigError) as err:
        load(clickhouseAdminPassword=value)
    message = str(err.value)
    assert "adpulse:clickhouseAdminPassword is a placeholder" in message
    assert "pulumi config rm adpulse:clickhouseAdminPassword" in message, (
        "the way back to generated"
    )


def test_redis_token_with_forbidden_characters_is_refused(load: Load) -> None:
    with pytest.raises(StackConfigError, match="adpulse:redisAuthToken"):
        load(redisAuthToken="has/a/slash-and-is-long-enough")


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.5/99"])
def test_bastion_cidr_must_be_a_real_narrow_range(load: Load, cidr: str) -> None:
    with pytest.raises(StackConfigError, match="adpulse:bastionCidr"):
        load(bastionCidr=cidr)


# One case per message: the bad value, and what the message must say (the key and the allowed
# values), so a reworded check that drops either fails here.
ERRORS: list[tuple[dict[str, str], list[str]]] = [
    ({"egress": "both"}, ["adpulse:egress is 'both'", "allowed values: nat, endpoints"]),
    ({"azCount": "2"}, ["adpulse:azCount is 2", "allowed values: 3"]),
    (
        {"flowLogRetentionDays": "100"},
        ["adpulse:flowLogRetentionDays is 100", "allowed values: 1, 3, 5", "365", "3653"],
    ),
    (
        {"clickhouseInstanceType": "m6i.2xlarge"},
        ["adpulse:clickhouseInstanceType is 'm6i.2xlarge', not a Graviton (arm64)", "r6g, r6gd"],
    ),
    (
        {"appInstanceType": "t3.large"},
        ["adpulse:appInstanceType is 't3.large', not a Graviton", "t4g", "e.g. t4g.large"],
    ),
    ({"appInstanceType": "t4g.huge"}, ["adpulse:appInstanceType is 't4g.huge'"]),
    (
        {"kafkaInstanceType": "kafka.m7g.medium"},
        ["adpulse:kafkaInstanceType is 'kafka.m7g.medium'", "kafka.t3.small", "kafka.m7g.large"],
    ),
    ({"kafkaVersion": "2.8.1"}, ["adpulse:kafkaVersion is '2.8.1'", "3.6.0, 3.7.x"]),
    ({"redisEngineVersion": "5.0"}, ["adpulse:redisEngineVersion is '5.0'", "6.2, 7.0, 7.1"]),
    (
        {"postgresEngineVersion": "12"},
        ["adpulse:postgresEngineVersion is '12'", "14, 15, 16, 17", "16.4"],
    ),
    ({"postgresEngineVersion": "16.x"}, ["adpulse:postgresEngineVersion is '16.x'"]),
    (
        {"redisNodeType": "r6g.large"},
        ["adpulse:redisNodeType is 'r6g.large'", "cache.<family>.<size>", "t4g, t3"],
    ),
    (
        {"postgresInstanceClass": "db.x9.large"},
        ["adpulse:postgresInstanceClass is 'db.x9.large'", "db.<family>.<size>", "r6g"],
    ),
    (
        {"certificateArn": "arn:aws:iam::123456789012:server-certificate/x"},
        ["adpulse:certificateArn", "not an ACM certificate ARN", "arn:aws:acm:<region>"],
    ),
    (
        {"certificateArn": CERT.replace("us-east-1", "eu-west-1")},
        ["adpulse:certificateArn is in eu-west-1", "aws:region us-east-1", "issued in us-east-1"],
    ),
    ({"apiHostname": "API_host"}, ["adpulse:apiHostname 'API_host' is not a DNS name"]),
    (
        {"apiHostname": "api.adpulse.example.com"},
        ["adpulse:apiHostname needs adpulse:certificateArn"],
    ),
    ({"tags": '{"Stack": "other"}'}, ["adpulse:tags sets 'Stack'", "any key but Project"]),
    ({"tags": '{"aws:owner": "me"}'}, ["adpulse:tags sets 'aws:owner'"]),
    ({"tags": '["Owner"]'}, ["adpulse:tags must be a map of strings"]),
    ({"clickhouseVolumeIops": "2000"}, ["adpulse:clickhouseVolumeIops is 2000", "3000..80000"]),
    (
        {"clickhouseVolumeSizeGb": "10", "clickhouseVolumeIops": "6000"},
        ["adpulse:clickhouseVolumeIops is 6000", "3000..5000 for a 10 GiB volume"],
    ),
    (
        {"clickhouseVolumeSizeGb": "200", "clickhouseVolumeIops": "90000"},
        ["adpulse:clickhouseVolumeIops is 90000", "3000..80000", "80000 at most"],
    ),
    (
        {"clickhouseVolumeThroughput": "3000"},
        ["adpulse:clickhouseVolumeThroughput is 3000 MiB/s", "125..2000 at 8000 IOPS"],
    ),
    (
        {"clickhouseVolumeThroughput": "100"},
        ["adpulse:clickhouseVolumeThroughput is 100 MiB/s", "125..2000"],
    ),
    (
        {"clickhouseVolumeSizeGb": "70000", "clickhouseVolumeIops": "8000"},
        ["adpulse:clickhouseVolumeSizeGb is 70000", "10..65536 GiB"],
    ),
    ({"kafkaVolumeSizeGb": "20000"}, ["adpulse:kafkaVolumeSizeGb is 20000", "allowed: 1..16384"]),
    ({"postgresStorageGb": "10"}, ["adpulse:postgresStorageGb is 10", "at least 20"]),
    ({"appInstanceCount": "0"}, ["adpulse:appInstanceCount is 0", "at least 1"]),
]


@pytest.mark.parametrize(("changes", "expected"), ERRORS, ids=lambda v: str(v)[:60])
def test_each_bad_value_names_its_key_and_the_allowed_values(
    load: Load, changes: dict[str, str], expected: list[str]
) -> None:
    with pytest.raises(StackConfigError) as err:
        load(**{"certificateArn": None, **changes})
    for part in expected:
        assert part in str(err.value), f"{part!r} not in {str(err.value)!r}"


def test_the_api_hostname_is_accepted_with_a_certificate_in_the_region(load: Load) -> None:
    cfg = load(certificateArn=CERT, apiHostname="api.adpulse.example.com")
    assert (cfg.certificate_arn, cfg.api_hostname) == (CERT, "api.adpulse.example.com")


@pytest.mark.parametrize("stack", ["Prod", "dev_1", "-dev", "dev-", "a--b", "a" * 21])
def test_a_stack_name_that_cannot_prefix_aws_names_is_refused(stack: str) -> None:
    with pytest.raises(StackConfigError, match=f"stack name {stack!r} cannot prefix AWS names"):
        name_prefix(stack)


def test_names_and_tags_come_from_the_stack(load: Load) -> None:
    cfg = load(tags='{"CostCenter": "ads"}')
    stack = pulumi.get_stack()
    assert cfg.name_prefix == f"adpulse-{stack}"
    assert cfg.default_tags == {
        "Project": "adpulse",
        "Stack": stack,
        "ManagedBy": "pulumi",
        "CostCenter": "ads",
    }


def test_defaults_are_the_production_shape(load: Load) -> None:
    cfg = load(
        clickhouseVolumeSizeGb=None, clickhouseVolumeIops=None, clickhouseVolumeThroughput=None
    )
    assert cfg.clickhouse_instance_type == "r6g.2xlarge"
    assert (cfg.clickhouse_volume_size_gb, cfg.clickhouse_volume_iops) == (1500, 6000)
    assert cfg.kafka_instance_type == "kafka.m7g.large"
    assert cfg.app_instance_type == "t4g.large" and cfg.app_instance_count == 2
    assert cfg.postgres_instance_class == "db.t4g.medium" and cfg.postgres_multi_az
    assert cfg.bastion_cidr is None and cfg.deletion_protection
    assert (cfg.egress, cfg.nat_gateway_per_az, cfg.az_count) == ("nat", True, 3)
    assert cfg.flow_log_retention_days == 365


@pytest.mark.parametrize("stack", sorted(STACK_FILES))
def test_a_committed_stack_file_holds_no_plain_secret_and_only_keys_the_program_reads(
    stack: str,
) -> None:
    """`pulumi stack init` may add its salt or key, and overrides may be added as `secure:`
    ciphertext; a secret in plain text, or a key nothing reads, fails here."""
    raw = yaml.safe_load(STACK_FILES[stack].read_text())
    assert set(raw) <= {"config", "encryptionsalt", "secretsprovider", "encryptedkey"}
    files = [*(ROOT / "stacks").glob("*.py"), *(ROOT / "stacks" / "config").glob("*.py")]
    source = "\n".join(p.read_text() for p in files)
    secret_keys = {k.split(":")[1] for k in SECRETS}
    for full, value in raw["config"].items():
        key = full.split(":", 1)[1]
        if key in secret_keys or isinstance(value, dict):
            assert isinstance(value, dict) and set(value) == {"secure"}, (
                f"Pulumi.{stack}.yaml holds {full} in plain text: "
                f"`pulumi config set --secret {full}` encrypts it"
            )
        if full.startswith("adpulse:"):
            assert f'"{key}"' in source, f"Pulumi.{stack}.yaml sets {full}, never read"
    assert len(SECRET_KEYS) == len(secret_keys), "every stack secret has its config override"


def test_the_prod_stack_file_is_the_default_shape(load: Load) -> None:
    """Pulumi.prod.yaml writes out the defaults, so both describe the same production stack."""
    reset = dict.fromkeys(["clickhouseVolumeSizeGb", "clickhouseVolumeIops"], None)
    defaults = load(**reset, clickhouseVolumeThroughput=None, egress=None)
    prod = load(**stack_file_config("prod"))
    # Secrets are Outputs (compared by identity), so take them from one side.
    assert dataclasses.replace(prod, secrets=defaults.secrets) == defaults


def test_the_dev_stack_file_is_smaller_in_every_size(load: Load) -> None:
    prod, dev = load(**stack_file_config("prod")), load(**stack_file_config("dev"))
    assert len(dev.clickhouse_topology.hosts) < len(prod.clickhouse_topology.hosts)
    assert dev.clickhouse_volume_size_gb < prod.clickhouse_volume_size_gb
    assert dev.app_instance_count < prod.app_instance_count
    assert dev.kafka_volume_size_gb < prod.kafka_volume_size_gb
    assert dev.postgres_storage_gb < prod.postgres_storage_gb
    assert not dev.postgres_multi_az and not dev.nat_gateway_per_az
    assert not dev.deletion_protection
