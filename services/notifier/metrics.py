"""Prometheus metrics of the notifier.

Request counts and latency come from shared.http, queue lag and handler time from shared.sqs.
"""

from prometheus_client import Counter

INCIDENTS = Counter(
    "ppe_notifier_incidents_total", "Incident changes by status and whether they alerted.", ["status", "alert"]
)
DELIVERIES = Counter(
    "ppe_notifier_deliveries_total", "Delivery attempts by channel kind and outcome.", ["kind", "outcome"]
)
PERSONS = Counter("ppe_notifier_persons_evaluated_total", "Persons judged against a rule.")
