"""Admin for nurture: sequences with their steps (checked at save, previewed for a sample lead), the
tenant's nurture settings, the suppression list, and read-only enrolments and messages (enrolments can
be stopped). Tenant admins and marketing ops use it; every save is audited; another tenant's rows are
not there."""
from __future__ import annotations

import copy

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.admin_base import CONFIG_ROLES, TenantScopedAdmin, admin_rows, request_role
from leadmgmt.tenancy.context import get_current_tenant, tenant_scope

from .admin_forms import NurtureSettingsForm, SequenceForm, StepForm, StepFormSet, SuppressionForm
from .models import (
    LIVE_ENROLLMENT_STATUSES,
    Enrollment,
    EnrollmentStatus,
    Message,
    NurtureSettings,
    Sequence,
    SequenceStatus,
    Step,
    Suppression,
    SuppressionReason,
)
from .services.enrollment import enrollment_stop
from .templating import MERGE_FIELDS, template_problems, template_render
from .validation import sequence_problems, sequence_steps

POSITION_PARK = 10_000  # steps that change places are parked here first: positions are unique per sequence
SAMPLE_LEAD = {"first_name": "Jane", "last_name": "Doe", "full_name": "Jane Doe", "email": "jane.doe@example.com",
               "company": "Northwind Analytics", "job_title": "Head of Marketing", "owner_name": "Alex Morgan",
               "owner_email": "alex.morgan@example.com"}
NO_ADDRESS_WARNING = ("Nurture sends nothing until you enter your postal address in the nurture settings (every "
                      "email's footer must show it). The default sequences are active and start sending as soon as "
                      "it is filled in.")


def _allowed(request, roles) -> bool:
    return request.user.is_superuser or request_role(request) in roles


def _platform_view(request) -> bool:
    return request.user.is_superuser and getattr(request, "tenant", None) is None


def _audit(request, tenant, action: str, obj, **kwargs) -> None:
    metadata = {"via": "admin", **kwargs.pop("metadata", {})}
    audit_record(tenant=tenant, actor=Actor.for_user(request.user), action=action, obj=obj, metadata=metadata, **kwargs)


def sample_context(tenant_name: str) -> dict[str, str]:
    return {**SAMPLE_LEAD, "tenant_name": tenant_name,
            "unsubscribe_url": f"{settings.PUBLIC_BASE_URL}/n/u/sample-token/"}


class TenantPageMixin:
    """A platform operator (no tenant of their own) works inside the object's tenant on its change page."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id)) if get_current_tenant() is None else None
        if obj is not None:
            with tenant_scope(obj.tenant):
                response = super().change_view(request, object_id, form_url, extra_context)
                return response.render() if hasattr(response, "render") else response
        return super().change_view(request, object_id, form_url, extra_context)


# --- sequences and their steps -----------------------------------------------------------------------


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    formset = StepFormSet
    extra = 0
    ordering = ("position",)
    readonly_fields = ("preview",)
    fieldsets = (
        (None, {"fields": (("position", "delay_days", "delay_hours"), "subject", "body",
                           ("condition", "condition_score"), ("when_false", "goto_position"), "preview")}),
    )
    verbose_name_plural = "Steps (in order; each delay counts from the previous email, the first from the enrolment)"

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0

    def get_queryset(self, request):
        # The form set filters by the sequence, which the admin has already tenant-checked.
        return admin_rows(Step, request).order_by("position", "id")

    def has_view_permission(self, request, obj=None):
        return _allowed(request, CONFIG_ROLES)

    def has_add_permission(self, request, obj):
        return _allowed(request, CONFIG_ROLES)

    def has_change_permission(self, request, obj=None):
        return _allowed(request, CONFIG_ROLES)

    def has_delete_permission(self, request, obj=None):
        return _allowed(request, CONFIG_ROLES)

    @admin.display(description="Preview for a sample lead")
    def preview(self, obj):
        if obj is None or obj.pk is None:
            return "Save to see a preview."
        if template_problems(obj.subject) or template_problems(obj.body):
            return "Fix the template to see a preview."
        context = sample_context(getattr(self, "tenant_name", "") or "Your company")
        return format_html('<div class="nurture-preview"><strong>{}</strong><pre>{}</pre></div>',
                           template_render(obj.subject, context), template_render(obj.body, context))

    def get_formset(self, request, obj=None, **kwargs):
        tenant = getattr(request, "tenant", None) or (obj.tenant if obj is not None else None)
        self.tenant_name = tenant.name if tenant is not None else ""
        return super().get_formset(request, obj, **kwargs)


@admin.register(Sequence)
class SequenceAdmin(TenantPageMixin, TenantScopedAdmin):
    """Sequences of a tenant: audience, readiness, ordered steps; Activate and Pause check and report."""

    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES
    audit_action_prefix = "nurture_sequence"
    form = SequenceForm
    inlines = [StepInline]
    change_form_template = "admin/nurture/sequence/change_form.html"
    list_display = ("name", "kind", "status", "auto_enroll", "priority", "ready_score", "step_count",
                    "active_enrollments")
    list_filter = ("status", "kind", "auto_enroll")
    search_fields = ("name", "goal")
    ordering = ("priority", "name")
    actions = ("activate", "pause")
    fieldsets = (
        (None, {"fields": ("name", "goal", "kind", "status", "auto_enroll", "priority", "ready_score")}),
        ("Audience (a lead matches when it matches every list with something ticked)", {"fields": (
            "audience_classes", "audience_bands", "audience_stages", "audience_statuses", "audience_sources",
            "audience_rejection_reasons", "audience_opportunity_lost")}),
    )

    def get_queryset(self, request):
        def count(model, **filters):
            rows = (model.objects.for_tenant(OuterRef("tenant_id")).filter(sequence_id=OuterRef("pk"),
                                                    **filters)
                    .order_by().values("sequence_id").annotate(n=Count("*")).values("n"))
            return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))

        return super().get_queryset(request).annotate(
            _steps=count(Step), _active=count(Enrollment, status=EnrollmentStatus.ACTIVE))

    @admin.display(description="Steps", ordering="_steps")
    def step_count(self, obj):
        return getattr(obj, "_steps", None)

    @admin.display(description="Active enrolments", ordering="_active")
    def active_enrollments(self, obj):
        return getattr(obj, "_active", None)

    def has_add_permission(self, request):
        # A platform operator adds sequences from inside a tenant: the audience choices are the tenant's.
        return super().has_add_permission(request) and not _platform_view(request)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = getattr(request, "tenant", None)
        return form

    def changelist_view(self, request, extra_context=None):
        tenant = getattr(request, "tenant", None)
        if request.method == "GET" and tenant is not None and not NurtureSettings.objects.for_tenant(tenant).exclude(postal_address="").exists():
            messages.warning(request, NO_ADDRESS_WARNING)
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["merge_fields"] = list(MERGE_FIELDS.items())
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_formset(self, request, form, formset, change):
        """Steps get the sequence's tenant; positions may be swapped in one save; each change is audited."""
        sequence = form.instance
        instances = formset.save(commit=False)
        meta = {"sequence": sequence.name, "sequence_id": sequence.pk}
        for obj in formset.deleted_objects:
            _audit(request, sequence.tenant, "nurture_step.deleted", obj, metadata={**meta, "repr": str(obj)})
            obj.delete()
        changed = {obj.pk: fields for obj, fields in formset.changed_objects}
        moved = [pk for pk, fields in changed.items() if "position" in fields]
        if moved:
            Step.objects.for_tenant(sequence.tenant_id).filter(pk__in=moved).update(position=F("position") + POSITION_PARK)
        for obj in instances:
            adding = obj.pk is None
            obj.tenant_id = sequence.tenant_id
            obj.save()
            fields = list(changed.get(obj.pk, []))
            _audit(request, sequence.tenant, f"nurture_step.{'created' if adding else 'updated'}", obj,
                   changes={f: [None, getattr(obj, f)] for f in fields} if not adding else {},
                   metadata={**meta, "position": obj.position})
        formset.save_m2m()

    @transaction.atomic
    def _status_set(self, request, queryset, status: str) -> None:
        done = []
        for sequence in queryset.select_for_update():
            if sequence.status == status:
                continue
            if status == SequenceStatus.ACTIVE:
                candidate = copy.copy(sequence)
                candidate.status = status
                problems = sequence_problems(candidate, sequence_steps(sequence))
                if problems:
                    messages.error(request, f"“{sequence}” was not activated: "
                                            + " ".join(m for msgs in problems.values() for m in msgs))
                    continue
            before = sequence.status
            sequence.status = status
            sequence.save(update_fields=["status", "updated_at"])
            _audit(request, sequence.tenant, "nurture_sequence.updated", sequence, changes={"status": [before, status]})
            done.append(sequence.name)
        if done:
            verb = "Activated" if status == SequenceStatus.ACTIVE else "Paused (no emails are sent while paused)"
            messages.success(request, f"{verb}: {', '.join(done)}.")

    @admin.action(description="Activate the selected sequences", permissions=["change"])
    def activate(self, request, queryset):
        self._status_set(request, queryset, SequenceStatus.ACTIVE)

    @admin.action(description="Pause the selected sequences", permissions=["change"])
    def pause(self, request, queryset):
        self._status_set(request, queryset, SequenceStatus.PAUSED)


# --- settings ----------------------------------------------------------------------------------------


@admin.register(NurtureSettings)
class NurtureSettingsAdmin(TenantPageMixin, TenantScopedAdmin):
    """One row per tenant (created with it): sender, postal address, limits, quiet hours, bounce secret."""

    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES
    audit_action_prefix = "nurture_settings"
    form = NurtureSettingsForm
    list_display = ("__str__", "from_name", "ready_to_send", "max_per_minute", "working_pause_days", "updated_at")
    readonly_fields = ("bounce_callback", "bounce_secret_status")
    actions = ("rotate_bounce_secret",)
    fieldsets = (
        ("Sender", {"fields": ("from_name", "from_email", "reply_to", "postal_address")}),
        ("Sending", {"fields": ("max_per_minute", ("quiet_hours_start", "quiet_hours_end"), "working_pause_days")}),
        ("Bounce callback (give both to your email provider)", {"fields": ("bounce_callback", "bounce_secret_status")}),
    )

    def changelist_view(self, request, extra_context=None):
        tenant = getattr(request, "tenant", None)
        if request.method == "GET" and tenant is not None and not NurtureSettings.objects.for_tenant(tenant).exclude(postal_address="").exists():
            messages.warning(request, NO_ADDRESS_WARNING)
        return super().changelist_view(request, extra_context)

    @admin.display(description="Can send (postal address set)", boolean=True)
    def ready_to_send(self, obj):
        return bool(obj.postal_address.strip())

    @admin.display(description="Callback URL")
    def bounce_callback(self, obj):
        if obj is None or obj.tenant_id is None:
            return "—"
        path = reverse("nurture-bounce", kwargs={"tenant_slug": obj.tenant.slug})
        return f"{settings.PUBLIC_BASE_URL}{path}"

    @admin.display(description="Bounce secret")
    def bounce_secret_status(self, obj):
        return ("Set; only its hash is stored, so it cannot be shown again. Lost it? Select these settings in "
                "the list and run “Generate a new bounce secret”: the new one is shown once.")

    def has_add_permission(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is None or not super().has_add_permission(request):
            return False
        return not NurtureSettings.objects.for_tenant(tenant).exists()

    def has_delete_permission(self, request, obj=None):
        return False  # the sender and postal address every email needs; edit them instead

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and not obj.postal_address.strip():
                messages.warning(request, NO_ADDRESS_WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Generate a new bounce secret", permissions=["change"])
    def rotate_bounce_secret(self, request, queryset):
        generated = []
        with transaction.atomic():
            for row in queryset.select_for_update().select_related("tenant"):
                raw = row.bounce_secret_generate()
                row.save(update_fields=["bounce_secret", "updated_at"])
                _audit(request, row.tenant, "nurture_settings.bounce_secret_rotated", row)
                generated.append({"tenant": row.tenant, "secret": raw, "callback": self.bounce_callback(row)})
        # Shown on this page only (never in a message cookie or the database): copy it now.
        response = TemplateResponse(request, "admin/nurture/bounce_secret_rotated.html", {
            **self.admin_site.each_context(request), "title": "New bounce secret", "generated": generated,
            "opts": self.model._meta, "changelist_url": reverse("admin:nurture_nurturesettings_changelist")})
        add_never_cache_headers(response)
        return response


# --- suppression list --------------------------------------------------------------------------------


@admin.register(Suppression)
class SuppressionAdmin(TenantScopedAdmin):
    """Addresses never mailed again: unsubscribes and bounces arrive by themselves; people add others."""

    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES
    audit_action_prefix = "suppression"
    form = SuppressionForm
    list_display = ("email", "reason", "note", "created_at")
    list_filter = ("reason",)
    search_fields = ("email", "note")
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not _platform_view(request)

    def get_fields(self, request, obj=None):
        return ("email", "reason", "note", "created_at") if obj is not None else ("email", "reason", "note")

    def get_readonly_fields(self, request, obj=None):
        return ("email", "reason", "created_at") if obj is not None else ()

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = getattr(request, "tenant", None)
        return form

    def has_delete_permission(self, request, obj=None):
        # An unsubscribe or a bounce is the lead's (or the provider's) word: only hand-made entries go.
        return super().has_delete_permission(request, obj) and (obj is None or obj.reason == SuppressionReason.MANUAL)

    def delete_queryset(self, request, queryset):
        kept = queryset.exclude(reason=SuppressionReason.MANUAL).count()
        super().delete_queryset(request, queryset.filter(reason=SuppressionReason.MANUAL))
        if kept:
            messages.warning(request, f"{kept} unsubscribed, bounced or complaint address(es) were kept.")


# --- enrolments and messages (read-only) -------------------------------------------------------------


class SequenceListFilter(admin.SimpleListFilter):
    """The sequences of the request's tenant (every tenant's for a platform operator)."""

    title = "sequence"
    parameter_name = "sequence"

    def lookups(self, request, model_admin):
        rows = admin_rows(Sequence, request).order_by("name")
        return [(str(pk), name) for pk, name in rows.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(sequence_id=value) if value and value.isascii() and value.isdigit() else queryset


class NurtureHistoryAdmin(TenantScopedAdmin):
    """What nurture did: visible to tenant admins and marketing ops, never edited here."""

    view_roles = CONFIG_ROLES
    change_roles: set[str] = set()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(NurtureHistoryAdmin):
    list_display = ("lead", "sequence", "status", "next_position", "next_due_at", "messages_sent", "automatic",
                    "enrolled_at", "exit_reason", "ended_at")
    list_filter = ("status", "kind", "exit_reason", "automatic", SequenceListFilter)
    list_select_related = ("lead", "sequence")
    search_fields = ("lead__email", "lead__last_name", "lead__company")
    ordering = ("-enrolled_at", "-id")
    actions = ("stop",)

    def has_stop_permission(self, request):
        return _allowed(request, CONFIG_ROLES)

    @admin.action(description="Stop the selected enrolments (reason: stopped by hand)", permissions=["stop"])
    def stop(self, request, queryset):
        actor = Actor.for_user(request.user)
        stopped = 0
        for enrollment in queryset.filter(status__in=LIVE_ENROLLMENT_STATUSES):
            enrollment_stop(enrollment=enrollment, actor=actor, note="Stopped in the admin")
            stopped += 1
        if stopped:
            messages.success(request, f"Stopped {stopped} enrolment(s); the reason is on each lead's timeline.")
        else:
            messages.info(request, "None of the selected enrolments was live: nothing to stop.")


@admin.register(Message)
class MessageAdmin(NurtureHistoryAdmin):
    list_display = ("claimed_at", "to_email", "subject", "sequence", "step_position", "status", "sent_at",
                    "opened_at", "clicked_at", "bounced_at")
    list_filter = ("status", SequenceListFilter)
    list_select_related = ("sequence",)
    search_fields = ("to_email", "subject")
    ordering = ("-claimed_at",)
