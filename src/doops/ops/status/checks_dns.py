"""The ``dns`` component: `doops dns check`'s checks (ops/dns_check.py), fanned out by the status engine."""

from __future__ import annotations

from doops.ops.dns_check import NOT_CONFIGURED, DnsChecker
from doops.ops.status.engine import Runner
from doops.ops.status.model import CheckResult, Status


def collect_dns(r: Runner) -> list[CheckResult]:
    if not r.app.config.dns.failover_records:
        return [r.verdict("dns", "*", "configured", Status.SKIPPED, NOT_CONFIGURED)]
    checker = DnsChecker(r.app)
    return r.fan_out([("dns", resource, check, fn) for resource, check, fn in checker.jobs()])
