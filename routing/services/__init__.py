"""Writes of routing: assignment and reassignment (`assign`), dry runs (`dry_run`), SLA clocks (`sla`)."""
