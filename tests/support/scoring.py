"""Helpers of the scoring tests: a lead's score breakdown as {rule: points}."""
from __future__ import annotations

from scoring.selectors import rule_labels, score_explain


def lines(lead) -> dict[str, int]:
    """{rule name: points} of a scored lead's breakdown."""
    labels = rule_labels(tenant=lead.tenant_id, model_ids=[lead.scoring_model_id])[lead.scoring_model_id]
    return {line["rule"]: line["points"] for line in score_explain(lead=lead, labels=labels)["lines"]}
