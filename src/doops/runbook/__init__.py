"""YAML runbooks: recover, verify and measure RTO/RPO, step by step (`doops runbook`)."""
