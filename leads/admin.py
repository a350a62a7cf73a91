"""Tenant-scoped admin for leads, accounts, lead forms (with an embeddable HTML snippet), signals."""
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from leadmgmt.tenancy.admin_base import CONFIG_ROLES, TenantScopedAdmin, request_role
from routing.models import Assignment
from scoring.admin import score_breakdown_html

from .models import Account, Activity, Lead, LeadForm, Signal, SignalType, StageTransition, Touch

# Lead data in the admin: tenant admins and marketing ops (who see every lead of the tenant anyway).
# Reps and managers work leads on the workspace pages, which apply their queue and team scope.
SALES_ROLES = CONFIG_ROLES


@admin.register(LeadForm)
class LeadFormAdmin(TenantScopedAdmin):
    list_display = ("name", "key", "default_source", "is_active", "created_at")
    readonly_fields = ("key", "html_snippet")
    fields = ("name", "key", "default_source", "allowed_origins", "success_url", "is_active", "html_snippet")
    change_roles = CONFIG_ROLES

    @admin.display(description="HTML snippet to paste into any site")
    def html_snippet(self, obj):
        if not obj or not obj.pk:
            return "Save the form to get its snippet."
        request = getattr(self, "_request", None)
        action = reverse("intake")
        if request is not None:
            action = request.build_absolute_uri(action)
        snippet = (
            f'<form method="post" action="{action}">\n'
            f'  <input type="hidden" name="form_key" value="{obj.key}">\n'
            '  <input name="first_name" placeholder="First name">\n'
            '  <input name="last_name" placeholder="Last name">\n'
            '  <input name="email" type="email" placeholder="Work email" required>\n'
            '  <input name="company" placeholder="Company">\n'
            '  <label><input type="checkbox" name="marketing_consent" value="yes"> Keep me informed</label>\n'
            '  <input name="website_url" style="display:none" tabindex="-1" autocomplete="off">\n'
            '  <button type="submit">Send</button>\n'
            "</form>"
        )
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", snippet)

    def get_form(self, request, obj=None, **kwargs):
        self._request = request
        return super().get_form(request, obj, **kwargs)


@admin.register(Account)
class AccountAdmin(TenantScopedAdmin):
    list_display = ("domain", "name", "owner", "created_at")
    search_fields = ("domain", "name")
    list_select_related = ("owner",)
    view_roles = SALES_ROLES


class TouchInline(admin.TabularInline):
    model = Touch
    extra = 0
    can_delete = False
    fields = ("received_at", "kind", "source", "form", "filled_fields", "payload")
    readonly_fields = fields
    ordering = ("-received_at",)

    def get_queryset(self, request):
        return Touch.objects.unscoped().select_related("form")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or request_role(request) in SALES_ROLES


class AssignmentInline(admin.TabularInline):
    """The lead's assignment history: who got it, by which rule and strategy, and why."""

    model = Assignment
    extra = 0
    fk_name = "lead"
    fields = ("at", "owner", "previous_owner", "team", "rule_name", "strategy", "trigger", "reason", "actor_name")
    readonly_fields = fields
    ordering = ("-at", "-id")
    verbose_name_plural = "assignment history"

    def get_queryset(self, request):
        return self.model.objects.unscoped().select_related("owner", "previous_owner", "team")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or request_role(request) in SALES_ROLES


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
                       "rejection_note", "rejected_at")
    raw_id_fields = ("account",)
    inlines = [TouchInline, AssignmentInline]
    view_roles = SALES_ROLES
    date_hierarchy = "created_at"

    def save_model(self, request, obj, form, change):
        if change and form.changed_data:
            # A person edited these: later captures must never overwrite them.
            obj.edited_fields = sorted(set(obj.edited_fields or []) | set(form.changed_data))
        super().save_model(request, obj, form, change)


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    view_roles = SALES_ROLES

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Signal)
class SignalAdmin(ReadOnlyTenantAdmin):
    list_display = ("type", "lead", "email", "occurred_at", "external_id", "processed_at")
    list_filter = ("type",)
    search_fields = ("email", "external_id")
    list_select_related = ("lead",)


@admin.register(SignalType)
class SignalTypeAdmin(TenantScopedAdmin):
    list_display = ("name", "label", "created_at")
    change_roles = CONFIG_ROLES


@admin.register(Activity)
class ActivityAdmin(ReadOnlyTenantAdmin):
    list_display = ("occurred_at", "kind", "lead", "actor", "subject")
    list_filter = ("kind",)
    list_select_related = ("lead", "actor")


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyTenantAdmin):
    list_display = ("at", "lead", "from_stage", "to_stage", "actor_name", "reason")
    list_select_related = ("lead",)
