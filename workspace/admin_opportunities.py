"""The Opportunity admin: tenant admins move a deal's stage and close it won or lost (amount, currency, close date,
lost reason), validated and saved through `workspace.services.outcomes` (the lead's outcome recorded with it);
marketing ops read. Registered by the workspace, the floor that converts and closes leads."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.admin_base import ADMIN_ROLES, CONFIG_ROLES, TenantScopedAdmin
from leadmgmt.tenancy.roles import OPPORTUNITY_CLOSE, roles_for
from leads.models import LostReason, Opportunity, OutcomeSource

from .services.outcomes import OPPORTUNITY_EDIT_FIELDS, opportunity_change_clean, opportunity_update

EDITABLE = ("stage", "amount", "currency", "closed_at", "lost_reason")


def _service_data(cleaned: dict, changed: list[str]) -> dict:
    """The admin form's changed values as the service takes them (a close date kept when the stage closes)."""
    data = {name: cleaned.get(name) for name in changed if name in OPPORTUNITY_EDIT_FIELDS}
    if data.get("stage") in ("won", "lost") and "closed_at" not in data and cleaned.get("closed_at"):
        data["closed_at"] = cleaned["closed_at"]
    return data


class OpportunityAdminForm(forms.ModelForm):
    """The stage and the closing values, checked by the service's rules (errors beside the fields). The lost reason
    is picked by code from the opportunity's tenant's active reasons."""

    lost_reason = forms.ChoiceField(required=False, choices=[], label="Lost reason",
                                    help_text="Required to close the deal lost.")

    class Meta:
        model = Opportunity
        fields = ["stage", "amount", "currency", "closed_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.lost_reason if self.instance.pk and self.instance.lost_reason_id else None
        reasons = (LostReason.objects.for_tenant(self.instance.tenant_id).filter(is_active=True)
                   if self.instance.pk else [])
        choices = [(r.code, r.label) for r in reasons]
        if current is not None and current.code not in dict(choices):
            choices.append((current.code, f"{current.label} (switched off)"))
        self.fields["lost_reason"].choices = [("", "—")] + choices
        self.initial["lost_reason"] = current.code if current is not None else ""

    def _post_clean(self):
        """The service decides (not the model's own full_clean): it writes the opportunity with the lead's outcome."""
        if self.errors or self.instance.pk is None:
            return
        data = _service_data(self.cleaned_data, self.changed_data)
        self.service_data = data
        try:
            opportunity_change_clean(opportunity=Opportunity.objects.for_tenant(self.instance.tenant_id)
                                     .select_related("lost_reason").get(pk=self.instance.pk), data=data)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)


@admin.register(Opportunity)
class OpportunityAdmin(TenantScopedAdmin):
    """Deals of the tenant's leads; tenant admins close them won or lost (the lead's outcome with it)."""

    form = OpportunityAdminForm
    view_roles = CONFIG_ROLES
    change_roles = ADMIN_ROLES & set(roles_for(OPPORTUNITY_CLOSE))  # admins act on every lead (the matrix)
    list_display = ("name", "lead", "owner", "stage", "amount", "currency", "closed_at", "lost_reason", "created_at")
    list_filter = ("stage", "lost_reason")
    search_fields = ("name", "lead__email", "lead__company")
    list_select_related = ("lead", "owner", "lost_reason")
    readonly_fields = ("name", "lead", "account", "owner", "budget", "authority", "need", "timeline", "qualified_by",
                       "accepted_at", "created_at", "updated_at")
    fields = ("name", "lead", "account", "owner", *EDITABLE, "budget", "authority", "need", "timeline",
              "qualified_by", "accepted_at", "created_at", "updated_at")
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request):
        return False  # opened by qualifying or converting a lead

    def has_delete_permission(self, request, obj=None):
        return False  # a deal's history stays; close it lost instead

    def save_model(self, request, obj, form, change):
        data = getattr(form, "service_data", None)
        if change and data:
            opportunity_update(opportunity=Opportunity.objects.for_tenant(obj.tenant_id).get(pk=obj.pk),
                               actor=Actor.for_user(request.user), data=data, source=OutcomeSource.ADMIN)
