"""Admin for routing: rules (with their people), territories, SLA policies (with escalation ladders),
business hours, routing settings and the rejection taxonomy, edited by tenant admins and marketing
ops; read-only assignment, SLA clock, escalation and notification lists; the dry-run page."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.admin import MembershipAdmin
from leadmgmt.tenancy.admin_base import CONFIG_ROLES, TenantScopedAdmin, admin_rows, request_role
from leadmgmt.tenancy.models import Membership
from leads.models import Lead

from .admin_forms import (
    BusinessHoursForm,
    DryRunForm,
    EscalationStepForm,
    EscalationStepFormSet,
    MembershipCapacityForm,
    RejectionReasonForm,
    RoutingRuleForm,
    RoutingRuleMemberForm,
    RoutingRuleMemberFormSet,
    RoutingSettingsForm,
    SlaPolicyForm,
    TerritoryForm,
    reason_use_count,
)
from .models import (
    Assignment,
    BusinessHours,
    Escalation,
    EscalationStep,
    Notification,
    RejectionReason,
    RoutingRule,
    RoutingRuleMember,
    RoutingSettings,
    SlaClock,
    SlaPolicy,
    Territory,
)
from .services.dry_run import route_dry_run


def _allowed(request, roles) -> bool:
    return request.user.is_superuser or request_role(request) in roles


def _platform_view(request) -> bool:
    return request.user.is_superuser and getattr(request, "tenant", None) is None


def _tenant_for(request, obj=None):
    tenant = getattr(request, "tenant", None)
    return tenant if tenant is not None else (obj.tenant if obj is not None and obj.tenant_id else None)


def _scoped_fk_queryset(db_field, request, kwargs):
    """FK choices: the request tenant's rows (people: its members); a platform superuser sees all."""
    related = db_field.related_model
    tenant = getattr(request, "tenant", None)
    if related is get_user_model():
        if tenant is not None:
            kwargs["queryset"] = related.objects.filter(memberships__tenant=tenant).order_by("username")
    elif hasattr(related.objects, "unscoped"):
        kwargs["queryset"] = admin_rows(related, request)
    return kwargs


class RoutingConfigAdmin(TenantScopedAdmin):
    """Tenant admins and marketing ops edit; forms validate against the tenant."""

    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if _platform_view(request):
            kwargs = _scoped_fk_queryset(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = _tenant_for(request, obj)
        return form

    def save_formset(self, request, form, formset, change):
        """Inline rows get the parent's tenant; every created, changed or deleted row is audited."""
        parent = form.instance
        actor = Actor.for_user(request.user)
        prefix = formset.model._meta.model_name
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audit_record(tenant=parent.tenant, actor=actor, action=f"{prefix}.deleted", obj=obj,
                         metadata={"via": "admin", "parent": str(parent), "repr": str(obj)})
            obj.delete()
        changed = {obj.pk: fields for obj, fields in formset.changed_objects}
        for obj in instances:
            adding = obj.pk is None
            obj.tenant_id = parent.tenant_id
            obj.save()
            audit_record(tenant=parent.tenant, actor=actor, action=f"{prefix}.{'created' if adding else 'updated'}",
                         obj=obj, metadata={"via": "admin", "parent": str(parent), "repr": str(obj),
                                            "fields": [] if adding else list(changed.get(obj.pk, []))})
        formset.save_m2m()


class TenantInline(admin.TabularInline):
    """An inline of a tenant-scoped parent: rows come through the (tenant-checked) parent, choices
    are the tenant's, and its forms validate against the tenant."""

    extra = 0
    roles = CONFIG_ROLES

    def get_queryset(self, request):
        return admin_rows(self.model, request).order_by(*self.model._meta.ordering)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs = _scoped_fk_queryset(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.tenant = _tenant_for(request, obj)
        return formset

    def has_view_permission(self, request, obj=None):
        return _allowed(request, self.roles)

    def has_add_permission(self, request, obj):
        return _allowed(request, self.roles)

    def has_change_permission(self, request, obj=None):
        return _allowed(request, self.roles)

    def has_delete_permission(self, request, obj=None):
        return _allowed(request, self.roles)


# --- routing rules -----------------------------------------------------------------------------------


class RoutingRuleMemberInline(TenantInline):
    model = RoutingRuleMember
    form = RoutingRuleMemberForm
    formset = RoutingRuleMemberFormSet
    verbose_name_plural = "People (the rule's target besides or instead of a team; weights for weighted round-robin)"


@admin.register(RoutingRule)
class RoutingRuleAdmin(RoutingConfigAdmin):
    """Ordered rules: the first whose conditions hold and whose strategy finds someone wins."""

    form = RoutingRuleForm
    inlines = [RoutingRuleMemberInline]
    audit_action_prefix = "routing_rule"
    list_display = ("position", "name", "strategy", "team", "is_active", "is_fallback", "fall_through")
    list_display_links = ("name",)
    list_filter = ("strategy", "is_active")
    list_select_related = ("team",)
    search_fields = ("name",)
    ordering = ("is_fallback", "position", "id")
    actions = ("dry_run",)
    change_list_template = "admin/routing/routingrule/change_list.html"

    def get_urls(self):
        return [path("dry-run/", self.admin_site.admin_view(self.dry_run_view), name="routing_routingrule_dry_run"),
                *super().get_urls()]

    @admin.action(description="Dry run: which rule would place a lead, and who would get it")
    def dry_run(self, request, queryset):
        return HttpResponseRedirect(reverse("admin:routing_routingrule_dry_run", current_app=self.admin_site.name))

    def dry_run_view(self, request):
        """Answer where a real or hypothetical lead would go, without assigning anything."""
        if not _allowed(request, self.view_roles) or getattr(request, "tenant", None) is None:
            raise PermissionDenied
        tenant = request.tenant
        form = DryRunForm(request.POST or None, tenant=tenant)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = route_dry_run(tenant=tenant, lead=form.cleaned_data.get("lead"),
                                       values=form.cleaned_data.get("values"))
            except ValidationError as exc:  # e.g. an unknown lead field among the values
                form.add_error("values", exc.messages)
        return TemplateResponse(request, "admin/routing/routingrule/dry_run.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Routing dry run", "form": form,
            "result": result})


@admin.register(Territory)
class TerritoryAdmin(RoutingConfigAdmin):
    form = TerritoryForm
    audit_action_prefix = "territory"
    list_display = ("position", "name", "team", "countries", "regions", "industries", "company_size_min",
                    "company_size_max", "is_active")
    list_display_links = ("name",)
    list_select_related = ("team",)
    search_fields = ("name",)


# --- SLA policies ------------------------------------------------------------------------------------


class EscalationStepInline(TenantInline):
    model = EscalationStep
    form = EscalationStepForm
    formset = EscalationStepFormSet
    verbose_name_plural = "Escalation ladder (minutes after the deadline; each step happens once per breach)"


@admin.register(SlaPolicy)
class SlaPolicyAdmin(RoutingConfigAdmin):
    form = SlaPolicyForm
    inlines = [EscalationStepInline]
    audit_action_prefix = "sla_policy"
    list_display = ("position", "name", "kind", "minutes", "sources", "bands", "stages", "business_hours_only",
                    "is_active")
    list_display_links = ("name",)
    list_filter = ("kind", "is_active")


@admin.register(BusinessHours)
class BusinessHoursAdmin(RoutingConfigAdmin):
    form = BusinessHoursForm
    audit_action_prefix = "business_hours"
    list_display = ("weekday", "opens_at", "closes_at")


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(RoutingConfigAdmin):
    form = RoutingSettingsForm
    audit_action_prefix = "routing_settings"
    list_display = ("default_team", "aging_flag_hours", "aging_alert_hours", "recycle_after_attempts")
    list_select_related = ("default_team",)


@admin.register(RejectionReason)
class RejectionReasonAdmin(RoutingConfigAdmin):
    """The reasons reps pick from to reject or disqualify a lead (one taxonomy for both; "nurture"
    reasons send a rejected lead back to nurture). A reason leads use is deactivated, never deleted."""

    form = RejectionReasonForm
    audit_action_prefix = "rejection_reason"
    list_display = ("position", "code", "label", "nurture", "is_active", "leads_using")
    list_display_links = ("code",)
    list_filter = ("is_active", "nurture")
    search_fields = ("code", "label")
    ordering = ("position", "id")

    def get_queryset(self, request):
        used = (Lead.objects.for_tenant(OuterRef("tenant_id")).filter(rejection_reason=OuterRef("code"))
                .order_by().values("tenant_id").annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(_leads_using=Coalesce(Subquery(used), 0))

    @admin.display(description="Leads using it", ordering="_leads_using")
    def leads_using(self, obj):
        return getattr(obj, "_leads_using", None)

    def get_deleted_objects(self, objs, request):
        """Reasons that leads use, or the last active ones, are refused (the page lists why)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        objs = list(objs)
        for reason in objs:
            used = reason_use_count(tenant=reason.tenant, code=reason.code)
            if used:
                protected.append(f"{reason}: {used} lead(s) were rejected or disqualified with it (deactivate it "
                                 "instead)")
        tenants = {reason.tenant_id for reason in objs}
        for tenant_id in tenants:
            doomed = [r.pk for r in objs if r.tenant_id == tenant_id]
            if not RejectionReason.objects.for_tenant(tenant_id).filter(is_active=True).exclude(
                    pk__in=doomed).exists():
                protected.append("The last active reason: reps could no longer reject or disqualify a lead")
        return deleted, counts, perms_needed, protected


# --- read-only history --------------------------------------------------------------------------------


class ReadOnlyAdmin(TenantScopedAdmin):
    """What routing and the SLA Agent did: visible to tenant admins and marketing ops, never edited."""

    view_roles = CONFIG_ROLES
    change_roles: set[str] = set()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("at", "lead", "owner", "previous_owner", "team", "rule_name", "strategy", "trigger", "reason",
                    "actor_name")
    list_filter = ("trigger", "strategy")
    list_select_related = ("lead", "owner", "previous_owner", "team")
    search_fields = ("lead__email", "rule_name", "reason")
    ordering = ("-at", "-id")


@admin.register(SlaClock)
class SlaClockAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "lead", "owner", "policy_name", "kind", "due_at", "breached_at", "level",
                    "stopped_at", "stop_reason")
    list_filter = ("kind", "stop_reason")
    list_select_related = ("lead", "owner")
    ordering = ("-started_at", "-id")


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ("at", "lead", "level", "action", "owner", "target", "note", "resolved_at")
    list_filter = ("action",)
    list_select_related = ("lead", "owner", "target")
    ordering = ("-at", "-id")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "title", "lead", "read_at", "email_due", "emailed_at")
    list_filter = ("kind", "email_due")
    list_select_related = ("user", "lead")
    ordering = ("-created_at", "-id")


# --- memberships: a cap of 0 on a team's last rep that a rule routes to is refused -------------------

admin.site.unregister(Membership)


@admin.register(Membership)
class RoutingMembershipAdmin(MembershipAdmin):
    """The tenancy membership admin, with routing's capacity check (registered here so tenancy does
    not depend on routing)."""

    form = MembershipCapacityForm

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = _tenant_for(request, obj)
        return form
