"""The funnel plan page (`/dashboard/plan/`, issue 16 point 8): the revenue target worked backwards to the leads,
MQLs, SALs, opportunities and won deals needed per month, the current and recent months' actuals against it, and
(for those who may change it) the plan's form. Reads `funnel_plan.plan_report`, writes `services.funnel_plan`."""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.roles import PLAN_EDIT, PLAN_VIEW, may
from leads.currencies import currency_clean

from .funnel_plan import (
    RATE_FIELDS,
    RATE_LABELS,
    STAGE_LABELS,
    STAGES,
    funnel_plan_get,
    plan_report,
)
from .models import FunnelPlan, PlanPeriod
from .services.funnel_plan import funnel_plan_save

MONEY_MAX = Decimal("999999999999.99")
HUNDRED = Decimal(100)


class FunnelPlanForm(forms.Form):
    """The plan's values; rates as percentages (15 for 15 %), stored as fractions."""

    revenue_target = forms.DecimalField(label="Revenue target", max_digits=14, decimal_places=2, max_value=MONEY_MAX,
                                        error_messages={"required": "Enter the revenue target."})
    target_period = forms.ChoiceField(label="Target per", choices=PlanPeriod.choices, initial=PlanPeriod.MONTH)
    currency = forms.CharField(label="Currency", max_length=3, initial="EUR",
                               widget=forms.TextInput(attrs={"size": 4, "autocapitalize": "characters"}))
    average_contract_value = forms.DecimalField(label="Average contract value", max_digits=14, decimal_places=2,
                                                max_value=MONEY_MAX,
                                                error_messages={"required": "Enter the average contract value."})
    lead_to_mql = forms.DecimalField(label="Lead → MQL (%)", max_digits=7, decimal_places=2)
    mql_to_sal = forms.DecimalField(label="MQL → SAL (%)", max_digits=7, decimal_places=2)
    sal_to_opportunity = forms.DecimalField(label="SAL → opportunity (%)", max_digits=7, decimal_places=2)
    opportunity_to_won = forms.DecimalField(label="Opportunity → won (%)", max_digits=7, decimal_places=2)
    use_measured_rates = forms.BooleanField(label="Use the measured rates instead", required=False)
    measured_months = forms.IntegerField(label="Measured over the last (months)", min_value=1, max_value=24,
                                         initial=6)

    def clean_revenue_target(self):
        value = self.cleaned_data["revenue_target"]
        if value <= 0:
            raise forms.ValidationError("The revenue target must be more than 0.")
        return value

    def clean_average_contract_value(self):
        value = self.cleaned_data["average_contract_value"]
        if value <= 0:
            raise forms.ValidationError("The average contract value must be more than 0.")
        return value

    def clean_currency(self):
        try:
            code = currency_clean(self.cleaned_data["currency"])
        except forms.ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        if not code:
            raise forms.ValidationError("Enter an ISO 4217 currency code, e.g. USD or EUR.")
        return code

    def _rate(self, name):
        value = self.cleaned_data[name]
        if not Decimal(0) < value <= HUNDRED:
            raise forms.ValidationError("Enter a rate above 0 and at most 100 %.")
        return (value / HUNDRED).quantize(Decimal("0.0001"))

    def clean_lead_to_mql(self):
        return self._rate("lead_to_mql")

    def clean_mql_to_sal(self):
        return self._rate("mql_to_sal")

    def clean_sal_to_opportunity(self):
        return self._rate("sal_to_opportunity")

    def clean_opportunity_to_won(self):
        return self._rate("opportunity_to_won")


def _initial(plan: FunnelPlan | None) -> dict:
    if plan is None:
        return {name: _percent(FunnelPlan._meta.get_field(name).default) for name in RATE_FIELDS}
    return {"revenue_target": plan.revenue_target, "target_period": plan.target_period, "currency": plan.currency,
            "average_contract_value": plan.average_contract_value, "use_measured_rates": plan.use_measured_rates,
            "measured_months": plan.measured_months,
            **{name: _percent(getattr(plan, name)) for name in RATE_FIELDS}}


def _percent(rate: Decimal) -> str:
    """0.1500 → "15", 0.1250 → "12.5" (never "1.5E+1")."""
    return f"{rate * HUNDRED:.2f}".rstrip("0").rstrip(".")


@require_http_methods(["GET", "POST"])
@login_required
def dashboard_plan(request):
    """Managers, admins and marketing ops see it; admins and marketing ops (`plan.edit`) change it. An invalid form
    answers 400 with the messages beside its fields and nothing saved."""
    tenant, membership = getattr(request, "tenant", None), getattr(request, "membership", None)
    role = membership.role if membership is not None and membership.is_active else None
    if tenant is None or not may(role, PLAN_VIEW):
        raise PermissionDenied("The funnel plan is for managers, admins and marketing ops.")
    editable = may(role, PLAN_EDIT)
    plan = funnel_plan_get(tenant=tenant)
    status = 200
    if request.method == "POST":
        if not editable:
            raise PermissionDenied("Only admins and marketing ops change the funnel plan.")
        form = FunnelPlanForm(request.POST)
        if form.is_valid():
            funnel_plan_save(tenant=tenant, data=form.cleaned_data, actor=Actor.for_user(request.user))
            return redirect("dashboard-plan")
        status = 400
    else:
        form = FunnelPlanForm(initial=_initial(plan))
    report = plan_report(tenant=tenant, plan=plan)
    rates = [{"name": name, "label": RATE_LABELS[name], "entered": report.entered_rates[name],
              "measured": report.measured_rates[name], "used": report.rates[name]} for name in RATE_FIELDS]
    needs = report.needs.whole() if report.needs is not None else None
    return render(request, "workspace/dashboard_plan.html", {
        "plan": plan, "report": report, "form": form if editable else None, "rates": rates,
        "needs": [{"stage": s, "label": STAGE_LABELS[s], "value": needs[s]} for s in reversed(STAGES)] if needs
        else [], "rows": report.rows(), "stage_labels": [STAGE_LABELS[s] for s in STAGES],
    }, status=status)
