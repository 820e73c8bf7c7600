"""CloudFormation custom resource: run the migration task on ECS and wait for it to exit 0.

Inlined into platform.yaml as the MigrationRunner Lambda (index.handler); the services depend on it, so a
new image's migrations are applied before any of its tasks start. Keep under 4096 characters (ZipFile limit).
"""

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3


def run_migrations(
    ecs: Any, props: dict[str, Any], remaining_ms: Callable[[], int], poll_s: float = 10.0
) -> tuple[str, str]:
    started = ecs.run_task(
        cluster=props["Cluster"],
        taskDefinition=props["TaskDefinition"],
        launchType="FARGATE",
        count=1,
        startedBy="cfn-migrations",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": props["Subnets"],
                "securityGroups": props["SecurityGroups"],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    if started.get("failures") or not started.get("tasks"):
        return "FAILED", f"could not start the migration task: {started.get('failures')}"
    arn = started["tasks"][0]["taskArn"]
    while remaining_ms() > 30_000:
        task = ecs.describe_tasks(cluster=props["Cluster"], tasks=[arn])["tasks"][0]
        if task["lastStatus"] == "STOPPED":
            code = task["containers"][0].get("exitCode")
            if code == 0:
                return "SUCCESS", f"migrations applied by {arn}"
            reason = task.get("stoppedReason", "")
            return "FAILED", f"migration task {arn} exited {code} ({reason}); see its log group /ppe/<stack>/migrate"
        time.sleep(poll_s)
    return "FAILED", f"migration task {arn} still running when the runner timed out; check it and retry"


def respond(event: dict[str, Any], status: str, reason: str) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3000],
            "PhysicalResourceId": event.get("PhysicalResourceId", "migrations"),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def handler(event: dict[str, Any], context: Any, ecs: Any = None) -> str:
    try:
        if event["RequestType"] == "Delete":
            status, reason = "SUCCESS", "nothing to undo: migrations stay applied"
        else:
            ecs = ecs or boto3.client("ecs")
            status, reason = run_migrations(ecs, event["ResourceProperties"], context.get_remaining_time_in_millis)
    except Exception as exc:  # any error must still answer CloudFormation, or the stack hangs for an hour
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
    print(json.dumps({"status": status, "reason": reason}))
    respond(event, status, reason)
    return status
