"""Scheduled DR drills: runbook runs recorded, trended, reported, scheduled and pushed as metrics."""
