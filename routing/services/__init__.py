"""Writes of routing: assignment and reassignment (`assign`), dry runs (`dry_run`), SLA clocks
(`sla_clocks`: start, restart, stop), SLA enforcement (`sla_enforcement`: breaches and the escalation
ladder), aging and recycling of untouched leads (`aging`), rep availability (`availability`).

Imports run one way: `sla_clocks` ← `assign` ← `sla_enforcement`; `aging` uses `sla_clocks`.
"""
