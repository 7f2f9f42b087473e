"""What a server's Prometheus endpoint says."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def started_adds(metrics_url: str) -> float:
    """AddCampaign calls the server has started, from its Prometheus metrics."""
    text = httpx.get(metrics_url, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "grpc_server_started_total" and (
                sample.labels.get("grpc_method") == "AddCampaign"
            ):
                return sample.value
    return 0.0
