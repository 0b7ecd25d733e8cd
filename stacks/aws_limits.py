"""What AWS accepts for the values the stack config sets: families, versions, limits.

Checked by `stacks.config` before anything is created, so a typo fails in seconds with the
allowed values, not forty minutes into `pulumi up` with an API error. Extend a list when AWS
adds a family or version and the program has been run against it.
"""

from __future__ import annotations

# The hosts run Debian 12 arm64, so their types must be Graviton (arm64) families.
GRAVITON_FAMILIES = (
    "c6g", "c6gd", "c6gn", "c7g", "c7gd", "c7gn", "c8g",
    "m6g", "m6gd", "m7g", "m7gd", "m8g",
    "r6g", "r6gd", "r7g", "r7gd", "r8g", "x2gd",
    "i4g", "im4gn", "is4gen", "t4g",
)  # fmt: skip
INSTANCE_SIZE = r"(nano|micro|small|medium|large|[0-9]*xlarge|metal)"

_MSK_M5 = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_MSK_M7G = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
MSK_BROKER_TYPES = (
    "kafka.t3.small",
    *(f"kafka.m5.{size}" for size in _MSK_M5),
    *(f"kafka.m7g.{size}" for size in _MSK_M7G),
)
# Managed services choose their own OS, so x86 families are fine there too.
REDIS_FAMILIES = ("t4g", "t3", "m6g", "m7g", "r6g", "r7g", "m5", "r5")
RDS_FAMILIES = ("t4g", "t3", "m6g", "m7g", "m8g", "r6g", "r7g", "r8g", "m6i", "m7i", "r6i", "r7i")

POSTGRES_MAJORS = ("14", "15", "16", "17")
REDIS_VERSIONS = ("6.2", "7.0", "7.1")
# MSK's version names; `x` versions get patch upgrades from AWS.
KAFKA_VERSIONS = ("3.5.1", "3.6.0", "3.7.x", "3.8.x", "3.9.x")

# gp3 since September 2025: 1 GiB..64 TiB, 3,000..80,000 IOPS at most 500 per GiB, and
# 125..2,000 MiB/s at most 0.25 MiB/s per provisioned IOPS.
GP3_MAX_GIB = 65_536
GP3_MIN_IOPS, GP3_MAX_IOPS, GP3_IOPS_PER_GIB = 3_000, 80_000, 500
GP3_MIN_MIBS, GP3_MAX_MIBS = 125, 2_000
MSK_MAX_VOLUME_GIB = 16_384
RDS_GP3_GIB = (20, 65_536)

# The only retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
