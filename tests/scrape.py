"""What a server's Prometheus endpoint says."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families


def families(metrics_url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the endpoint: sample name -> sorted labels -> value."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    text = httpx.get(metrics_url, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def family_names(metrics_url: str) -> set[str]:
    """The names of the metric families the endpoint describes (with or without samples), as
    its `# TYPE` lines name them; not the `_created` times of those that have samples."""
    lines = httpx.get(metrics_url, timeout=5).text.splitlines()
    names = {line.split()[2] for line in lines if line.startswith("# TYPE ")}
    return {name for name in names if not name.endswith("_created")}


def sample(metrics_url: str, name: str, **labels: str) -> float | None:
    """One sample's value, None if the endpoint has no such sample."""
    return families(metrics_url).get(name, {}).get(tuple(sorted(labels.items())))


def started_adds(metrics_url: str) -> float:
    """AddCampaign calls the server has started, from its Prometheus metrics."""
    for labels, value in families(metrics_url).get("grpc_server_started_total", {}).items():
        if ("grpc_method", "AddCampaign") in labels:
            return value
    return 0.0


def wait_for_metrics(metrics_url: str, timeout: float = 30.0) -> None:
    """Until the endpoint answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(metrics_url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
