"""Tenant-scoped admin for accounts, lead forms (with an embeddable HTML snippet), signals, activities, the
activity outcome taxonomy, the lost-deal taxonomy and the leads' outcomes (read only).

The Lead admin, which shows the score breakdown and the assignment history, is the workspace's."""
from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from leadmgmt.tenancy.admin_base import (
    CONFIG_ROLES,
    ReadOnlyTenantInline,
    TenantScopedAdmin,
)

from .models import (
    Account,
    Activity,
    ActivityOutcome,
    Lead,
    LeadForm,
    LostReason,
    Outcome,
    Signal,
    SignalType,
    StageTransition,
    Touch,
)

# Lead data in the admin: tenant admins and marketing ops (who see every lead of the tenant anyway).
# Reps and managers work leads on the workspace pages, which apply their queue and team scope.
SALES_ROLES = CONFIG_ROLES


# The standard fields of the embeddable form: (name, label, input type, autocomplete, required).
SNIPPET_FIELDS = (
    ("first_name", "First name", "text", "given-name", False),
    ("last_name", "Last name", "text", "family-name", False),
    ("email", "Work email", "email", "email", True),
    ("phone", "Phone", "tel", "tel", False),
    ("company", "Company", "text", "organization", False),
    ("job_title", "Job title", "text", "organization-title", False),
    ("country", "Country", "text", "country-name", False),
)
SNIPPET_HIDDEN = ("page_url", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CONSENT_TEXT = "Yes, send me news and offers by email. I can unsubscribe at any time."

# Progressive enhancement only: the form posts without it. It records the page and the UTM tags of the visit.
SNIPPET_SCRIPT = (
    "<script>\n"
    "(function () {{\n"
    "  var form = document.getElementById(\"{form_id}\");\n"
    "  if (!form) return;\n"
    "  var query = new URLSearchParams(window.location.search);\n"
    "  form.elements.page_url.value = window.location.href;\n"
    "  [\"utm_source\", \"utm_medium\", \"utm_campaign\", \"utm_term\", \"utm_content\"].forEach(function (name) {{\n"
    "    if (query.get(name)) form.elements[name].value = query.get(name);\n"
    "  }});\n"
    "}})();\n"
    "</script>"
)


def lead_form_snippet(*, form: LeadForm, action_url: str) -> str:
    """A plain HTML form for `form` that posts to the intake endpoint from any site: labelled
    standard fields, a consent checkbox, the honeypot the intake drops bots with, and hidden page
    and UTM fields that an optional script fills in."""
    prefix = f"lm-{form.key[3:11].lower()}"
    max_lengths = {name: Lead._meta.get_field(name).max_length for name, *_ in SNIPPET_FIELDS}
    field_rows = mark_safe("".join(  # each row built by format_html
        format_html(
            '  <p>\n    <label for="{prefix}-{name}">{label}{star}</label><br>\n'
            '    <input id="{prefix}-{name}" name="{name}" type="{type}" autocomplete="{auto}" maxlength="{max}"'
            "{required}>\n  </p>\n",
            prefix=prefix, name=name, label=label, star=" *" if required else "", type=input_type,
            auto=autocomplete, max=max_lengths[name], required=mark_safe(" required") if required else "",
        )
        for name, label, input_type, autocomplete, required in SNIPPET_FIELDS
    ))
    hidden = format_html_join("", '  <input type="hidden" name="{}" value="">\n', ((name,) for name in SNIPPET_HIDDEN))
    honeypot = settings.INTAKE_HONEYPOT_FIELD
    after = (format_html("<!-- After sending, visitors are taken to {} (the form's success URL in leadmgmt). -->\n",
                         form.success_url) if form.success_url
             else mark_safe("<!-- After sending, visitors see leadmgmt's thank-you page: set a success URL on the "
                            "form in leadmgmt to send them to yours. -->\n"))
    return format_html(
        '<!-- leadmgmt lead form "{name}": paste anywhere in a page of an allowed site. -->\n{after}'
        '<form id="{prefix}" method="post" action="{action}" accept-charset="UTF-8">\n'
        '  <input type="hidden" name="form_key" value="{key}">\n'
        "{fields}"
        '  <p>\n    <label><input type="checkbox" name="marketing_consent" value="yes"> {consent}</label>\n  </p>\n'
        "  <!-- Leave this hidden field empty: only bots fill it, and their posts are dropped. -->\n"
        '  <div aria-hidden="true" style="position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden">\n'
        '    <label for="{prefix}-{honeypot}">Leave this field empty</label>\n'
        '    <input id="{prefix}-{honeypot}" name="{honeypot}" type="text" tabindex="-1" autocomplete="off" value="">\n'
        "  </div>\n"
        "{hidden}"
        '  <button type="submit">Send</button>\n'
        "</form>\n{script}",
        name=form.name, after=after, prefix=prefix, action=action_url, key=form.key, fields=field_rows,
        consent=CONSENT_TEXT, honeypot=honeypot, hidden=hidden,
        script=format_html(SNIPPET_SCRIPT, form_id=prefix),
    )


@admin.register(LeadForm)
class LeadFormAdmin(TenantScopedAdmin):
    """Web forms of the tenant: each has a public key and a ready-to-paste HTML snippet."""

    list_display = ("name", "key", "default_source", "success_url", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "key")
    readonly_fields = ("key", "html_snippet")
    fields = ("name", "key", "default_source", "allowed_origins", "success_url", "is_active", "html_snippet")
    change_roles = CONFIG_ROLES
    audit_action_prefix = "lead_form"

    def get_form(self, request, obj=None, **kwargs):
        self._action_url = request.build_absolute_uri(reverse("intake"))
        return super().get_form(request, obj, **kwargs)

    @admin.display(description="HTML snippet to paste into any site")
    def html_snippet(self, obj):
        if obj is None or obj.pk is None:
            return "Save the form to get its snippet."
        snippet = lead_form_snippet(form=obj, action_url=getattr(self, "_action_url", reverse("intake")))
        warnings = []
        if not obj.is_active:
            warnings.append("This form is inactive: submissions are refused until it is switched on again.")
        if not obj.allowed_origins:
            warnings.append("No site may post this form from a browser yet: add your site to the allowed origins, "
                            'e.g. ["https://www.example.com"].')
        return format_html(
            '{warnings}<textarea id="lead-form-snippet" class="vLargeTextField" rows="24" cols="100" readonly '
            'spellcheck="false" aria-label="HTML snippet">{snippet}</textarea>'
            '<p><button type="button" class="button" data-copy-snippet="lead-form-snippet">Copy snippet</button> '
            '<span class="help" role="status" aria-live="polite" data-copy-status></span></p>'
            '<p class="help">A plain HTML form: it works without JavaScript and posts from any site listed in the '
            "allowed origins. The short script at the end only records the page and its UTM tags.</p>",
            warnings=format_html_join("", '<p class="errornote">{}</p>', ((w,) for w in warnings)),
            snippet=escape(snippet),  # shown as text, copied exactly as generated
        )


@admin.register(Account)
class AccountAdmin(TenantScopedAdmin):
    """Accounts with their score: the parts it is made of are read-only (scoring writes them)."""

    list_display = ("domain", "name", "owner", "score", "engaged_leads", "scored_leads", "last_engaged_at",
                    "created_at")
    search_fields = ("domain", "name")
    list_select_related = ("owner",)
    view_roles = SALES_ROLES
    score_fields = ("score", "score_explanation", "scored_leads", "engaged_leads", "fit_max", "fit_avg",
                    "engagement_max", "engagement_sum", "others_points", "breadth_bonus", "last_engaged_at",
                    "scored_at")
    readonly_fields = score_fields
    fieldsets = (
        (None, {"fields": ("domain", "name", "owner")}),
        ("Account score", {
            "description": "Best fit + best engagement of its leads + a share of the other engaged people's "
                           "engagement + a bonus per engaged person beyond the first, clamped to 0–100 (the "
                           "settings are on the published scoring model). Recomputed whenever its leads are scored.",
            "fields": score_fields}),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if "tenant" in self.get_exclude(request, obj):
            return fieldsets
        (name, options), rest = fieldsets[0], fieldsets[1:]  # a platform superuser picks the tenant
        return ((name, {**options, "fields": ("tenant", *options["fields"])}), *rest)

    @admin.display(description="How the score adds up")
    def score_explanation(self, obj):
        return obj.score_explanation or "Not scored yet: none of its leads is scored."


class TouchInline(ReadOnlyTenantInline):
    model = Touch
    view_roles = SALES_ROLES
    fields = ("received_at", "kind", "source", "form", "filled_fields", "payload")
    readonly_fields = fields
    ordering = ("-received_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("form")


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


class ActivityOutcomeForm(forms.ModelForm):
    """One outcome of the taxonomy: a code unique in the tenant, kept once activities use it."""

    tenant = None  # set by the admin: the request's tenant, or the edited row's (a platform superuser)

    class Meta:
        model = ActivityOutcome
        fields = ["tenant", "code", "label", "kind", "counts_as_contact", "position", "is_active"]

    def clean_code(self):
        return (self.cleaned_data.get("code") or "").strip().lower().replace("-", "_")

    def clean(self):
        data = super().clean()
        code = data.get("code")
        tenant = data.get("tenant") or self.tenant or (self.instance.tenant if self.instance.tenant_id else None)
        if tenant is None or not code:
            return data
        if ActivityOutcome.objects.for_tenant(tenant).filter(code=code).exclude(pk=self.instance.pk).exists():
            self.add_error("code", "An outcome with this code already exists.")
        elif self.instance.pk and self.instance.code != code:
            used = outcome_use_count(tenant_id=tenant.pk, code=self.instance.code)
            if used:
                self.add_error("code", f"{used} activit{'y was' if used == 1 else 'ies were'} logged as "
                                       f"“{self.instance.code}”: change the label instead, or switch this outcome "
                                       "off and add a new one.")
        return data


def outcome_use_count(*, tenant_id: int, code: str) -> int:
    return Activity.objects.for_tenant(tenant_id).filter(outcome=code).count()


@admin.register(ActivityOutcome)
class ActivityOutcomeAdmin(TenantScopedAdmin):
    """The outcomes reps pick when they log a call, an email or a meeting. Only one that counts as contact
    stops the first-contact SLA clock; the others are attempts. An outcome in use is switched off, never
    deleted."""

    form = ActivityOutcomeForm
    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES
    audit_action_prefix = "activity_outcome"
    list_display = ("position", "code", "label", "kind", "counts_as_contact", "is_active")
    list_display_links = ("code",)
    list_filter = ("kind", "counts_as_contact", "is_active")
    search_fields = ("code", "label")
    ordering = ("position", "id")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = getattr(request, "tenant", None) or (obj.tenant if obj is not None else None)
        return form

    def get_deleted_objects(self, objs, request):
        """Outcomes that activities use are refused (the page says to switch them off instead)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for outcome in objs:
            used = outcome_use_count(tenant_id=outcome.tenant_id, code=outcome.code)
            if used:
                protected.append(f"{outcome}: {used} logged activit{'y uses' if used == 1 else 'ies use'} it "
                                 "(switch it off instead)")
        return deleted, counts, perms_needed, protected


class LostReasonForm(forms.ModelForm):
    """One reason of the lost-deal taxonomy: a code unique in the tenant, kept once deals use it."""

    tenant = None  # set by the admin: the request's tenant, or the edited row's (a platform superuser)

    class Meta:
        model = LostReason
        fields = ["tenant", "code", "label", "position", "is_active"]

    def clean_code(self):
        return (self.cleaned_data.get("code") or "").strip().lower().replace("-", "_")

    def clean(self):
        data = super().clean()
        code = data.get("code")
        tenant = data.get("tenant") or self.tenant or (self.instance.tenant if self.instance.tenant_id else None)
        if tenant is None or not code:
            return data
        if LostReason.objects.for_tenant(tenant).filter(code=code).exclude(pk=self.instance.pk).exists():
            self.add_error("code", "A lost reason with this code already exists.")
        elif self.instance.pk and self.instance.code != code and lost_reason_use_count(reason=self.instance):
            self.add_error("code", "Closed deals use this code: change the label instead, or switch this reason off "
                                   "and add a new one.")
        return data


def lost_reason_use_count(*, reason: LostReason) -> int:
    return Outcome.objects.for_tenant(reason.tenant_id).filter(lost_reason=reason).count()


@admin.register(LostReason)
class LostReasonAdmin(TenantScopedAdmin):
    """Why deals are lost: what people pick when they close one lost, and what reports group by. A reason in use is
    switched off, never deleted."""

    form = LostReasonForm
    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES
    audit_action_prefix = "lost_reason"
    list_display = ("position", "code", "label", "is_active")
    list_display_links = ("code",)
    list_filter = ("is_active",)
    search_fields = ("code", "label")
    ordering = ("position", "id")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.tenant = getattr(request, "tenant", None) or (obj.tenant if obj is not None else None)
        return form

    def get_deleted_objects(self, objs, request):
        """Reasons that deals use are refused (switch them off instead)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for reason in objs:
            if lost_reason_use_count(reason=reason):
                protected.append(f"{reason}: closed deals use it (switch it off instead)")
        return deleted, counts, perms_needed, protected


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyTenantAdmin):
    """How each lead ended (won, lost, disqualified): written by closing a deal or the outcome sync, never here."""

    list_display = ("closed_at", "lead", "result", "amount", "currency", "lost_reason", "reason", "source")
    list_filter = ("result", "source", "lost_reason")
    search_fields = ("lead__email", "reason")
    list_select_related = ("lead", "lost_reason")
    date_hierarchy = None
    ordering = ("-closed_at", "-id")

    def has_delete_permission(self, request, obj=None):
        return False
