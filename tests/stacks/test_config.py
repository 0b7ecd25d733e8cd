"""Stack config: missing or weak secrets and unsafe values stop `pulumi up` with the key named."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pytest
import yaml

from stacks.config import StackConfig, StackConfigError, load_stack_config
from tests.stacks.conftest import CONFIG, SECRETS, set_config

Load = Callable[..., StackConfig]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load() -> Iterator[Load]:
    """Load the config with some keys changed (None removes one); restore the session's after."""

    def run(secret: bool = True, **changes: str | None) -> StackConfig:
        config = dict(CONFIG)
        for key, value in changes.items():
            if value is None:
                config.pop(f"adpulse:{key}", None)
            else:
                config[f"adpulse:{key}"] = value
        # secret=False: the changed keys were set without --secret.
        plain = {f"adpulse:{key}" for key in changes} if not secret else set()
        set_config(config, [k for k in SECRETS if k in config and k not in plain])
        return load_stack_config(pulumi.Config("adpulse"))

    yield run
    set_config(CONFIG, list(SECRETS))


@pytest.mark.parametrize("key", [k.split(":")[1] for k in SECRETS])
def test_a_missing_secret_names_its_key_and_the_command(load: Load, key: str) -> None:
    with pytest.raises(StackConfigError) as err:
        load(**{key: None})
    assert f"config adpulse:{key} is missing" in str(err.value)
    assert f"pulumi config set --secret adpulse:{key}" in str(err.value)


def test_a_secret_stored_in_plain_text_is_refused(load: Load) -> None:
    with pytest.raises(StackConfigError, match="adpulse:clickhouseApiPassword is stored in plain"):
        load(secret=False, clickhouseApiPassword="api-R5t8Yu2Io4Pa6S")


@pytest.mark.parametrize("value", ["changeme", "short"])
def test_placeholder_or_short_passwords_are_refused(load: Load, value: str) -> None:
    with pytest.raises(StackConfigError, match="adpulse:clickhouseAdminPassword is a placeholder"):
        load(clickhouseAdminPassword=value)


def test_redis_token_with_forbidden_characters_is_refused(load: Load) -> None:
    with pytest.raises(StackConfigError, match="adpulse:redisAuthToken"):
        load(redisAuthToken="has/a/slash-and-is-long-enough")


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.5/99"])
def test_bastion_cidr_must_be_a_real_narrow_range(load: Load, cidr: str) -> None:
    with pytest.raises(StackConfigError, match="adpulse:bastionCidr"):
        load(bastionCidr=cidr)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"clickhouseVolumeIops": "2000"}, "clickhouseVolumeIops"),
        ({"clickhouseVolumeSizeGb": "10", "clickhouseVolumeIops": "6000"}, "clickhouseVolumeIops"),
        ({"clickhouseVolumeThroughput": "3000"}, "clickhouseVolumeThroughput"),
        ({"appInstanceCount": "1"}, "appInstanceCount"),
    ],
)
def test_impossible_sizes_name_the_key(load: Load, changes: dict[str, str], key: str) -> None:
    with pytest.raises(StackConfigError, match=f"adpulse:{key}"):
        load(**changes)


def test_defaults_are_the_production_shape(load: Load) -> None:
    cfg = load(
        clickhouseVolumeSizeGb=None, clickhouseVolumeIops=None, clickhouseVolumeThroughput=None
    )
    assert cfg.clickhouse_instance_type == "r6g.2xlarge"
    assert (cfg.clickhouse_volume_size_gb, cfg.clickhouse_volume_iops) == (500, 6000)
    assert cfg.kafka_instance_type == "kafka.m7g.large"
    assert cfg.app_instance_type == "t4g.large" and cfg.app_instance_count == 2
    assert cfg.postgres_instance_class == "db.t4g.medium" and cfg.postgres_multi_az
    assert cfg.bastion_cidr is None and cfg.deletion_protection


def test_the_example_stack_config_shows_the_defaults(load: Load) -> None:
    """stacks/Pulumi.prod.example.yaml documents every key it sets with its default value."""
    example = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.example.yaml").read_text())["config"]
    source = (ROOT / "stacks" / "config.py").read_text()
    keys = {k.split(":", 1)[1]: str(v) for k, v in example.items() if k.startswith("adpulse:")}
    for key in keys:
        assert f'"{key}"' in source, f"the example sets adpulse:{key}, which config.py never reads"
    reset = dict.fromkeys(["clickhouseVolumeSizeGb", "clickhouseVolumeIops"], None)
    defaults = load(**reset, clickhouseVolumeThroughput=None, enableVpcEndpoints=None)
    # Secrets are Outputs (compared by identity), so take them from one side.
    assert dataclasses.replace(load(**keys), secrets=defaults.secrets) == defaults
