"""Target tracking per service: queue depth per task (metric math), ALB requests per target, or CPU."""

from typing import Any

from deploy.catalog import ServiceDeploy
from deploy.cfn.intrinsics import (
    get_att,
    queue_id,
    ref,
    sub,
)
from shared.topology import Topology


def scaling_resources(svc: ServiceDeploy, topology: Topology) -> dict[str, Any]:
    title = svc.title
    resources: dict[str, Any] = {
        f"{title}ScalableTarget": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "ServiceNamespace": "ecs",
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": sub(f"service/${{Cluster}}/${{{title}Service.Name}}"),
                "MinCapacity": ref(f"{title}MinTasks"),
                "MaxCapacity": ref(f"{title}MaxTasks"),
            },
        }
    }
    policy: dict[str, Any] = {"ScaleInCooldown": 120, "ScaleOutCooldown": 60}
    if svc.scaling == "queue-depth":
        consumed = [spec for spec in topology.queues if svc.name in spec.consumers]
        metrics: list[dict[str, Any]] = [
            {
                "Id": f"q{index}",
                "Label": spec.name,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [{"Name": "QueueName", "Value": get_att(queue_id(spec.name), "QueueName")}],
                    },
                    "Stat": "Sum",
                },
            }
            for index, spec in enumerate(consumed)
        ]
        metrics.append(
            {
                "Id": "tasks",
                "Label": "running tasks",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "ECS/ContainerInsights",
                        "MetricName": "RunningTaskCount",
                        "Dimensions": [
                            {"Name": "ClusterName", "Value": ref("Cluster")},
                            {"Name": "ServiceName", "Value": get_att(f"{title}Service", "Name")},
                        ],
                    },
                    "Stat": "Average",
                },
            }
        )
        backlog = " + ".join(f"q{index}" for index in range(len(consumed)))
        metrics.append(
            {
                "Id": "backlog_per_task",
                "Label": "visible messages per running task",
                "Expression": f"({backlog}) / tasks",
                "ReturnData": True,
            }
        )
        policy["TargetValue"] = ref(f"{title}MessagesPerTask")
        policy["CustomizedMetricSpecification"] = {"Metrics": metrics}
    elif svc.scaling == "request-count":
        policy["TargetValue"] = ref(f"{title}RequestsPerTarget")
        policy["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": sub(f"${{LoadBalancer.LoadBalancerFullName}}/${{{title}TargetGroup.TargetGroupFullName}}"),
        }
    else:
        policy["TargetValue"] = ref(f"{title}CpuTarget")
        policy["PredefinedMetricSpecification"] = {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    resources[f"{title}ScalingPolicy"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": sub(f"${{AWS::StackName}}-{svc.name}-{svc.scaling}"),
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": ref(f"{title}ScalableTarget"),
            "TargetTrackingScalingPolicyConfiguration": policy,
        },
    }
    return resources
