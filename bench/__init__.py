"""`make bench`: throughput, latency, CPU and memory of the service and the gateway,
each against a no-op baseline measured in the same run (see `python -m bench --help`)."""
