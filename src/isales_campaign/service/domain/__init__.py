"""The domain: every decision about campaigns that the contract alone cannot state, made on
facts the store reads, free of gRPC and SQL.

- `campaign_rules`: the vendor's rules that need the tenant, the clock, the deployment or the
  stored campaigns (begin not before today, the device type kept, a unique name, an existing
  skill queue, ...);
- `legacy_time`: the vendor's `yyyy-MM-dd HH:mm:ss` in a tenant's zone;
- `transitions`: the status model (what each change may start from, and what it leads to);
- `quotas`: the device families and the per-tenant limits;
- `idempotency`: what an idempotency key promises a retry;
- `history`: what the record of a change says of it, and until when it is kept.
"""
