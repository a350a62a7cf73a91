"""The Lead admin: a lead with its score breakdown (scoring), captures and assignment history (routing),
for tenant admins and marketing ops, the export of selected leads to CSV, and the privacy requests on a selected
lead's person (subject access export, erasure; admins only); the feedback report's settings. Registered by the
workspace, the floor that sees every app."""
import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.admin_base import (
    CONFIG_ROLES,
    ReadOnlyTenantInline,
    TenantScopedAdmin,
    request_role,
)
from leadmgmt.tenancy.roles import LEAD_EXPORT, PRIVACY_ERASE, PRIVACY_EXPORT, may, principal_may
from leads.admin import SALES_ROLES, TouchInline
from leads.erasure import email_hash
from leads.models import Lead
from routing.models import Assignment
from scoring.admin import score_breakdown_html
from workspace.services.privacy import person_erase, person_export

from .export import COLUMNS, export_chooser, export_columns_parse, export_filename, leads_export_csv
from .models import FeedbackSettings


class AssignmentInline(ReadOnlyTenantInline):
    """The lead's assignment history: who got it, by which rule and strategy, and why."""

    model = Assignment
    view_roles = SALES_ROLES
    fk_name = "lead"
    fields = ("at", "owner", "previous_owner", "team", "rule_name", "strategy", "trigger", "reason", "actor_name")
    readonly_fields = fields
    ordering = ("-at", "-id")
    verbose_name_plural = "assignment history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner", "previous_owner", "team")


@admin.register(Lead)
class LeadAdmin(TenantScopedAdmin):
    list_display = ("email", "full_name", "company", "status", "stage", "owner", "score", "source", "created_at")
    list_filter = ("status", "stage", "source", "is_personal_email")
    search_fields = ("email", "first_name", "last_name", "company", "phone")
    list_select_related = ("owner",)
    readonly_fields = ("id", "score", "band", "lead_class", "score_breakdown", "sla_due_at", "edited_fields",
                       "possible_duplicate_of", "form", "created_at", "updated_at", "last_activity_at",
                       # computed by the Scoring Agent, never typed in:
                       "fit_score", "engagement_score", "lead_class_reason", "scoring_model", "scored_at", "is_hot",
                       "cold_since", score_breakdown_html,
                       # owners change only through routing (lead_assign), which keeps the history:
                       "owner", "team", "assigned_at", "unassigned_reason", "first_contacted_at", "accepted_at",
                       "contact_attempts", "aging_flagged_at", "aging_alerted_at", "rejection_reason",
                       "rejection_note", "rejected_at",
                       # set by an erasure at the person's request (Erase person action, manage.py privacy_erase):
                       "erased_at")
    raw_id_fields = ("account",)
    inlines = [TouchInline, AssignmentInline]
    view_roles = SALES_ROLES
    date_hierarchy = "created_at"
    actions = ["export_csv", "privacy_export", "privacy_erase"]

    def has_export_permission(self, request) -> bool:
        """The role matrix's `lead.export` for the member of the active tenant (a platform superuser picks a
        tenant first: an export belongs to one tenant's audit trail)."""
        if getattr(request, "tenant", None) is None or not self.has_view_permission(request):
            return False
        return request.user.is_superuser or principal_may(action=LEAD_EXPORT, membership=request.membership)

    @admin.action(description="Export selected to CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        """The selected leads (all that match with "select all") as CSV: first a page to choose the columns (the
        default set ticked), then the file, streamed and audited like every export."""
        select_across = request.POST.get("select_across") == "1"
        chosen, errors = None, []
        if request.POST.get("confirmed") == "yes":
            try:
                chosen = export_columns_parse(request.POST.getlist("columns"))
            except ValidationError as exc:
                errors = exc.message_dict["columns"]
            if not request.POST.getlist("columns"):
                chosen, errors = None, ["Tick at least one column."]
        if chosen is None:
            ticked = [key for key in request.POST.getlist("columns") if key in COLUMNS] or None
            return TemplateResponse(request, "admin/leads/lead/export_columns.html", {
                **self.admin_site.each_context(request), "opts": self.opts, "title": "Export to CSV",
                **export_chooser(filters=[], chosen=ticked), "errors": errors, "select_across": select_across,
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}, status=400 if errors else 200)
        filters = {key: request.GET.getlist(key) for key in sorted(request.GET)}
        filters["selected"] = ["all matching"] if select_across else [
            str(len(request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)))]
        lines = leads_export_csv(tenant=request.tenant, actor=Actor.for_user(request.user),
                                 queryset=queryset.order_by("-created_at", "id"), columns=chosen,
                                 filters=filters, source="admin")
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(tenant=request.tenant)}"'
        response["Cache-Control"] = "no-store"
        return response

    def save_model(self, request, obj, form, change):
        if change and form.changed_data:
            # A person edited these: later captures must never overwrite them.
            obj.edited_fields = sorted(set(obj.edited_fields or []) | set(form.changed_data))
        super().save_model(request, obj, form, change)

    # --- privacy requests (the role table's PRIVACY_EXPORT / PRIVACY_ERASE: tenant admins; platform superusers) --
    def has_privacy_export_permission(self, request) -> bool:
        return request.user.is_superuser or may(request_role(request), PRIVACY_EXPORT)

    def has_privacy_erase_permission(self, request) -> bool:
        return request.user.is_superuser or may(request_role(request), PRIVACY_ERASE)

    @admin.action(description="Export personal data (subject access)", permissions=["privacy_export"])
    def privacy_export(self, request, queryset):
        """One selected lead's person, everything held about them, downloaded as JSON."""
        leads = list(queryset.exclude(email="").select_related("tenant")[:2])
        if len(leads) != 1:
            self.message_user(request, "Select exactly one lead with an email to export its person's data.",
                              messages.ERROR)
            return None
        lead = leads[0]
        export = person_export(tenant=lead.tenant, email=lead.email, actor=Actor.for_user(request.user))
        response = HttpResponse(json.dumps(export, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="subject-access-{email_hash(lead.email)[:16]}.json"'
        return response

    @admin.action(description="Erase person (GDPR)", permissions=["privacy_erase"])
    def privacy_erase(self, request, queryset):
        """Erase the people of the selected leads, after a confirmation page; leads without an email (or already
        erased) are left as they are."""
        leads = list(queryset.exclude(email="").select_related("tenant").order_by("email"))
        if not leads:
            self.message_user(request, "None of the selected leads has an email to erase its person by.",
                              messages.ERROR)
            return None
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(request, "admin/leads/lead/privacy_erase_confirm.html", {
                **self.admin_site.each_context(request), "opts": self.opts, "title": "Erase person (GDPR)",
                "leads": leads, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME})
        erased = 0
        for lead in leads:
            try:
                person_erase(tenant=lead.tenant, email=lead.email, actor=Actor.for_user(request.user))
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
                continue
            erased += 1
        self.message_user(request, f"{erased} person(s) erased: their leads are anonymised and they are kept on "
                                   "the hashed suppression list.", messages.SUCCESS)
        return None


from . import admin_costs, admin_opportunities  # noqa: E402, F401  (the Source costs and Opportunity admins)


@admin.register(FeedbackSettings)
class FeedbackSettingsAdmin(TenantScopedAdmin):
    """The feedback report's MQL acceptance target (one row per tenant; none: 60 %), set by marketing ops."""

    list_display = ("mql_acceptance_target", "updated_at")
    fields = ("mql_acceptance_target",)
    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        tenant = getattr(request, "tenant", None)
        return tenant is None or not FeedbackSettings.objects.for_tenant(tenant).exists()
