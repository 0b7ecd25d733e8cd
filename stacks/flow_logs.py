"""VPC flow logs: every accepted and rejected flow to CloudWatch Logs, KMS-encrypted."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions


def flow_logs_trust(account: str) -> str:
    """VPC Flow Logs may assume the role, for this account's flow logs only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


def flow_logs_write(group_arn: str) -> str:
    """Write streams in the one log group; listing groups cannot be scoped to one."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [group_arn, f"{group_arn}:*"],
                },
                {"Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"},
            ],
        }
    )


def flow_logs(
    name: str,
    vpc_id: pulumi.Input[str],
    name_prefix: str,
    retention_days: int,
    kms_key_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> tuple[aws.ec2.FlowLog, aws.cloudwatch.LogGroup]:
    """The flow log, its log group (`/<name_prefix>/vpc-flow-logs-...`) and delivery role.

    The key's policy must let CloudWatch Logs use it (stacks.secret_store.key_policy).
    """
    opts = ResourceOptions(parent=parent)
    group = aws.cloudwatch.LogGroup(
        f"{name}-flow-logs",
        name_prefix=f"/{name_prefix}/vpc-flow-logs-",
        retention_in_days=retention_days,
        kms_key_id=kms_key_arn,
        opts=opts,
    )
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=parent))
    role = aws.iam.Role(
        f"{name}-flow-logs-role",
        assume_role_policy=account.account_id.apply(flow_logs_trust),
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-flow-logs-write", role=role.id, policy=group.arn.apply(flow_logs_write), opts=opts
    )
    flow_log = aws.ec2.FlowLog(
        f"{name}-flow-log",
        vpc_id=vpc_id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=group.arn,
        iam_role_arn=role.arn,
        # One-minute records: an incident's flows show up while it is still going on.
        max_aggregation_interval=60,
        opts=opts,
    )
    return flow_log, group
