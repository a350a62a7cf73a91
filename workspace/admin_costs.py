"""The Source costs admin (issue 16 point 7): a month's cost per source and campaign, the tenant's rows only; admins
and marketing ops (`costs.edit`, the admin's people) enter them; managers read them in the API and the Source ROI.
The API (`POST /api/v1/costs/`) upserts the same rows."""
from __future__ import annotations

from django import forms
from django.contrib import admin

from leadmgmt.tenancy.admin_base import TenantScopedAdmin
from leadmgmt.tenancy.roles import COSTS_EDIT, roles_for
from leads.currencies import currency_clean

from .models import SourceCost


class SourceCostForm(forms.ModelForm):
    """Month as any day of it (stored as its first day), currency as ISO 4217, one row per month/source/campaign."""

    tenant = None  # set by the admin: the request's tenant, or the edited row's (a platform superuser)

    class Meta:
        model = SourceCost
        fields = ["tenant", "month", "source", "campaign", "amount", "currency"]
        help_texts = {"month": "Any day of the month: the cost is the whole month's."}

    def clean_month(self):
        month = self.cleaned_data.get("month")
        return month.replace(day=1) if month else month

    def clean_source(self):
        return (self.cleaned_data.get("source") or "").strip()

    def clean_campaign(self):
        return (self.cleaned_data.get("campaign") or "").strip()

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and amount < 0:
            raise forms.ValidationError("The amount cannot be negative.")
        return amount

    def clean_currency(self):
        code = currency_clean(self.cleaned_data.get("currency"))
        if not code:
            raise forms.ValidationError("Enter an ISO 4217 currency code, e.g. USD or EUR.")
        return code

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant") or self.tenant or (self.instance.tenant if self.instance.tenant_id else None)
        if tenant is not None and data.get("month") and data.get("source") is not None:
            taken = SourceCost.objects.for_tenant(tenant).filter(
                month=data["month"], source=data["source"], campaign=data.get("campaign", "")).exclude(
                pk=self.instance.pk)
            if taken.exists():
                self.add_error("campaign", "This month already has a cost for this source and campaign.")
        return data

    def validate_unique(self):
        """The tenant-aware check is `clean` (the tenant is not a form field for tenant staff)."""


@admin.register(SourceCost)
class SourceCostAdmin(TenantScopedAdmin):
    """What lead sources and campaigns cost per month: the Source ROI on the dashboards divides it by their leads."""

    form = SourceCostForm
    # The admin is for tenant admins and marketing ops (managers read costs in the API and the Source ROI).
    view_roles = set(roles_for(COSTS_EDIT))
    change_roles = set(roles_for(COSTS_EDIT))
    audit_action_prefix = "source_cost"
    list_display = ("month", "source", "campaign", "amount", "currency", "updated_at")
    list_filter = ("source", "currency")
    search_fields = ("source", "campaign")
    ordering = ("-month", "source", "campaign")
    date_hierarchy = None

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = getattr(request, "tenant", None) or (obj.tenant if obj is not None else None)
        return form
