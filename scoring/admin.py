"""Admin for scoring: versioned models (drafts edited inline, published ones read-only), the what-if
review and publish page, new drafts from any version, and the score explanation of a lead."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.db.models import CharField, Count, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.admin_base import CONFIG_ROLES, TenantScopedAdmin, admin_rows, request_role
from leadmgmt.tenancy.context import get_current_tenant, tenant_scope
from leadmgmt.tenancy.roles import CONFIG_EDIT, PREDICTIVE_TRAIN, PREDICTIVE_VIEW, roles_for

from .admin_backtest import backtest_allowed, backtest_page_context
from .admin_forms import (
    SIGNAL_TYPES_DATALIST_ID,
    ScoreBandForm,
    ScoreBandFormSet,
    ScoringModelAddForm,
    ScoringModelForm,
    ScoringRuleForm,
    ScoringRuleFormSet,
)
from .models import (
    FIT_CATEGORIES,
    Category,
    LeadClass,
    PredictiveFeature,
    PredictiveModel,
    ScoreBand,
    ScoringModel,
    ScoringRule,
)
from .selectors import rule_labels, score_explain
from .services import (
    model_whatif,
    scoring_model_draft_create,
    scoring_model_problems,
    scoring_model_publish,
    scoring_model_published,
)

RULE_COMPARE_FIELDS = ("category", "field", "operator", "value", "signal_type", "points", "cap", "once_per_days",
                       "exclusive_group", "disqualifies", "is_active")


def _allowed(request, roles) -> bool:
    return request.user.is_superuser or request_role(request) in roles


# --- inlines ----------------------------------------------------------------------------------------


class ModelPartInline(admin.TabularInline):
    """Rules and bands of a version: editable while it is a draft, read-only once published."""

    extra = 0
    roles = CONFIG_ROLES

    def get_queryset(self, request):
        # The form set filters by the parent model, which the admin has already tenant-checked.
        return admin_rows(self.model, request).order_by(*self.ordering)

    def _editable(self, request, obj) -> bool:
        return _allowed(request, self.roles) and (obj is None or obj.is_editable)

    def has_view_permission(self, request, obj=None):
        return _allowed(request, self.roles)

    def has_add_permission(self, request, obj):
        return self._editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj)


class ScoringRuleInline(ModelPartInline):
    """A rule per compact block (four short lines, not a 13-column row) so the editor fits a laptop screen."""

    model = ScoringRule
    form = ScoringRuleForm
    formset = ScoringRuleFormSet
    template = "admin/edit_inline/stacked.html"
    classes = ("scoring-rule",)
    ordering = ("position", "id")
    verbose_name_plural = "Rules (fit, engagement, negative; points roll up by category)"
    fieldsets = ((None, {"fields": (("position", "name", "category", "is_active"), ("field", "operator", "value"),
                                    ("points", "signal_type", "cap", "once_per_days"),
                                    ("exclusive_group", "disqualifies"))}),)


class ScoreBandInline(ModelPartInline):
    model = ScoreBand
    form = ScoreBandForm
    formset = ScoreBandFormSet
    ordering = ("min_score", "id")
    verbose_name_plural = "Bands (must cover 0–100 without gaps or overlaps)"


# --- scoring models ---------------------------------------------------------------------------------


@admin.register(ScoringModel)
class ScoringModelAdmin(TenantScopedAdmin):
    """One row per version; a draft is edited here, reviewed on its publish page, then published."""

    view_roles = CONFIG_ROLES
    change_roles = CONFIG_ROLES
    audit_action_prefix = "scoring_model"
    form = ScoringModelForm
    list_display = ("name", "version", "status", "rule_count", "based_on_version", "published_at", "published_by",
                    "created_at")
    list_display_links = ("name",)
    list_filter = ("status",)
    list_select_related = ("published_by", "based_on")
    search_fields = ("name", "notes")
    ordering = ("-version",)
    inlines = [ScoringRuleInline, ScoreBandInline]
    actions = ["backtest"]
    readonly_fields = ("version", "status", "based_on", "next_step", "created_at", "created_by", "published_at",
                       "published_by")
    fieldsets = (
        (None, {"fields": ("name", "version", "status", "based_on", "next_step", "notes")}),
        ("Hot, cold and decay", {"fields": ("hot_threshold", "cold_threshold", "archive_after_days",
                                            "engagement_window_days")}),
        ("Lead class thresholds (fit × engagement)", {"fields": ("fit_high_min", "fit_medium_min",
                                                                 "engagement_ready_min", "engagement_some_min")}),
        ("Account score (several engaged people at one company)", {
            "description": "Account score = best fit + best engagement of its leads + a share of the other engaged "
                           "people's engagement + a bonus per engaged person beyond the first, clamped to 0–100.",
            "fields": ("account_engaged_min", "account_others_percent", "account_breadth_points",
                       "account_breadth_cap")}),
        ("Learned model (predictive score)", {
            "description": "The tenant's learned model (Learned models, below) predicts each lead's conversion "
                           "probability from its won and lost leads. The blend is the percent of the composite score "
                           "it takes (0: the points alone); training needs the minimums of closed and won leads.",
            "fields": ("predictive_blend", "predictive_min_closed", "predictive_min_won")}),
        ("History", {"classes": ("collapse",), "fields": ("created_at", "created_by", "published_at",
                                                           "published_by")}),
    )

    # --- list ----------------------------------------------------------------------------------
    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_rule_count=Count("rules"))

    @admin.display(description="Rules", ordering="_rule_count")
    def rule_count(self, obj):
        return getattr(obj, "_rule_count", None)

    @admin.display(description="Based on")
    def based_on_version(self, obj):
        return f"v{obj.based_on.version}" if obj.based_on_id and obj.based_on else "—"

    # --- permissions: published and retired versions are read-only forever --------------------
    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_editable)

    # --- add = start a draft through the service -----------------------------------------------
    def _platform_view(self, request) -> bool:
        return request.user.is_superuser and getattr(request, "tenant", None) is None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if "queryset" not in kwargs and hasattr(related.objects, "unscoped") and self._platform_view(request):
            kwargs["queryset"] = admin_rows(related, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ScoringModelAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            fields = ["name", "based_on", "notes"]
            return [(None, {"fields": (["tenant"] + fields) if self._platform_view(request) else fields})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else super().get_readonly_fields(request, obj)

    def get_exclude(self, request, obj=None):
        return [] if obj is None and self._platform_view(request) else super().get_exclude(request, obj)

    def get_inlines(self, request, obj):
        return [] if obj is None else super().get_inlines(request, obj)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        tenant = getattr(request, "tenant", None)
        published = scoring_model_published(tenant=tenant) if tenant is not None else None
        if published is not None:
            initial.setdefault("based_on", published.pk)
            initial.setdefault("name", published.name)
        return initial

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        tenant = form.cleaned_data.get("tenant") or request.tenant
        draft = scoring_model_draft_create(tenant=tenant, actor=Actor.for_user(request.user),
                                           based_on=form.cleaned_data.get("based_on"),
                                           name=form.cleaned_data.get("name") or None)
        if form.cleaned_data.get("notes"):
            draft.notes = form.cleaned_data["notes"]
            draft.save(update_fields=["notes"])
        return draft

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        # on add, scoring_model_draft_create() saved and audited the draft already

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(request, f"Draft v{obj.version} created. Edit its rules and bands, then review the "
                                  "what-if and publish it.")
        return HttpResponseRedirect(self._url("change", obj))

    # --- inline saves: tenant stamped, audited, band keys free to be swapped --------------------
    def save_formset(self, request, form, formset, change):
        model = form.instance
        actor = Actor.for_user(request.user)
        prefix = "scoring_rule" if formset.model is ScoringRule else "score_band"
        before = {f.instance.pk: f.initial for f in formset.initial_forms}
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audit_record(tenant=model.tenant, actor=actor, action=f"{prefix}.deleted", obj=obj,
                         metadata={"via": "admin", "model_version": model.version, "repr": str(obj)})
            obj.delete()
        changed = {obj.pk: fields for obj, fields in formset.changed_objects}
        if formset.model is ScoreBand:
            rekeyed = [pk for pk, fields in changed.items() if "key" in fields]
            if rekeyed:  # keys are unique per model: park them so two bands can swap keys in one save
                ScoreBand.objects.for_tenant(model.tenant_id).filter(pk__in=rekeyed).update(
                    key=Concat(Value("~"), Cast("id", output_field=CharField())))
        for obj in instances:
            adding = obj.pk is None
            obj.tenant_id = model.tenant_id
            obj.save()
            fields = [] if adding else changed.get(obj.pk, [])
            audit_record(
                tenant=model.tenant, actor=actor, action=f"{prefix}.{'created' if adding else 'updated'}", obj=obj,
                changes={f: [before[obj.pk].get(f), getattr(obj, f)] for f in fields},
                metadata={"via": "admin", "model_version": model.version, "repr": str(obj)},
            )
        formset.save_m2m()

    # --- change page, publish page, new draft ---------------------------------------------------
    def _url(self, view: str, obj) -> str:
        return reverse(f"admin:scoring_scoringmodel_{view}", args=[obj.pk], current_app=self.admin_site.name)

    @admin.display(description="Next step")
    def next_step(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        if obj.is_editable:
            return format_html('<a class="button" href="{}">Review what-if and publish…</a>', self._url("publish", obj))
        return f"This version is {obj.get_status_display().lower()} and read-only: create a new draft from it to " \
               "change the scoring."

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from leads.signal_catalog import signal_type_names

        obj = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if obj is not None:
            extra.update({
                "signal_types_datalist_id": SIGNAL_TYPES_DATALIST_ID,
                "signal_types": sorted(signal_type_names(tenant=obj.tenant_id)) if obj.is_editable else [],
                "publish_url": self._url("publish", obj) if obj.is_editable else None,
                "new_draft_url": self._url("new_draft", obj),
                "can_create_draft": _allowed(request, self.change_roles),
                "backtest_url": self._url("backtest", obj) if backtest_allowed(request) else None,
            })
        if obj is not None and get_current_tenant() is None:
            # A platform operator (no tenant of their own) works inside the object's tenant.
            with tenant_scope(obj.tenant):
                response = super().change_view(request, object_id, form_url, extra_context=extra)
                return response.render() if hasattr(response, "render") else response
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/publish/", self.admin_site.admin_view(self.publish_view), name=f"{prefix}_publish"),
            path("<path:object_id>/new-draft/", self.admin_site.admin_view(self.new_draft_view),
                 name=f"{prefix}_new_draft"),
            path("<path:object_id>/backtest/", self.admin_site.admin_view(self.backtest_view),
                 name=f"{prefix}_backtest"),
            *super().get_urls(),
        ]

    def _get_for_action(self, request, object_id) -> ScoringModel:
        """The model if it is the tenant's; 404 for a missing one or another tenant's, alike."""
        if not _allowed(request, self.change_roles):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such scoring model.")
        return obj

    def new_draft_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        source = self._get_for_action(request, object_id)
        draft = scoring_model_draft_create(tenant=source.tenant, actor=Actor.for_user(request.user), based_on=source)
        messages.success(request, f"Draft v{draft.version} created from v{source.version}. Edit it, then review "
                                  "the what-if and publish it.")
        return HttpResponseRedirect(self._url("change", draft))

    def publish_view(self, request, object_id):
        model = self._get_for_action(request, object_id)
        if not model.is_editable:
            messages.warning(request, f"v{model.version} is {model.get_status_display().lower()}: only a draft "
                                      "can be published. Create a new draft from it to change the scoring.")
            return HttpResponseRedirect(self._url("change", model))
        if request.method == "POST":
            try:
                scoring_model_publish(model=model, actor=Actor.for_user(request.user))
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
                return HttpResponseRedirect(self._url("publish", model))
            messages.success(request, f"v{model.version} is now the active scoring model. Every lead is being "
                                      "re-scored in the background; scores and bands update within minutes.")
            return HttpResponseRedirect(self._url("change", model))
        return TemplateResponse(request, "admin/scoring/scoringmodel/publish.html",
                                self._publish_context(request, model))

    # --- backtest on the closed leads (scoring.admin_backtest) ---------------------------------------
    def has_backtest_permission(self, request) -> bool:
        return backtest_allowed(request)

    @admin.action(description="Backtest on closed leads", permissions=["backtest"])
    def backtest(self, request, queryset):
        chosen = list(queryset.order_by("-version")[:2])
        if len(chosen) != 1:
            messages.warning(request, "Select one scoring model to backtest (a draft is shown beside the published "
                                      "one).")
            return None
        return HttpResponseRedirect(self._url("backtest", chosen[0]))

    def backtest_view(self, request, object_id):
        if not backtest_allowed(request):
            raise PermissionDenied
        model = self.get_object(request, unquote(object_id))
        if model is None:
            raise Http404("No such scoring model.")
        with tenant_scope(model.tenant):  # a platform operator (no tenant of their own) reads the model's tenant
            context = backtest_page_context(model=model, params=request.GET)
        return TemplateResponse(request, "admin/scoring/scoringmodel/backtest.html", {
            **self.admin_site.each_context(request), **context, "opts": self.opts, "original": model,
            "title": f"Backtest of {model}", "change_url": self._url("change", model)})

    def _publish_context(self, request, model: ScoringModel) -> dict:
        problems = scoring_model_problems(model=model)
        whatif, whatif_error = [], None
        if not problems:
            try:
                whatif = model_whatif(model=model)
            except DatabaseError as exc:  # never a 500: say what the database refused
                whatif_error = str(exc).strip().splitlines()[0]
        published = scoring_model_published(tenant=model.tenant)
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Review and publish {model}",
            "original": model,
            "published": published,
            "problems": problems,
            "whatif": whatif,
            "whatif_error": whatif_error,
            "leads_total": sum(row["now"] for row in whatif),
            "leads_moving": sum(row["moving_out"] for row in whatif),
            "rule_changes": rule_changes(old=published, new=model),
            "change_url": self._url("change", model),
            "can_publish": not problems and whatif_error is None,
        }


def rule_changes(*, old: ScoringModel | None, new: ScoringModel) -> list[dict]:
    """Rules added, removed or changed from `old` to `new`, matched by name (two queries)."""
    if old is None:
        return []
    old_rules = {r.name: r for r in ScoringRule.objects.for_tenant(old.tenant_id).filter(model=old)}
    new_rules = {r.name: r for r in ScoringRule.objects.for_tenant(new.tenant_id).filter(model=new)}
    out = []
    for name, rule in new_rules.items():
        if name not in old_rules:
            out.append({"name": name, "kind": "added", "details": f"{rule.points:+d} points"})
            continue
        before = old_rules[name]
        diffs = [f"{f}: {getattr(before, f)!r} → {getattr(rule, f)!r}" for f in RULE_COMPARE_FIELDS
                 if getattr(before, f) != getattr(rule, f)]
        if diffs:
            out.append({"name": name, "kind": "changed", "details": "; ".join(diffs)})
    out.extend({"name": name, "kind": "removed", "details": f"was {rule.points:+d} points"}
               for name, rule in old_rules.items() if name not in new_rules)
    return out


# --- score explanation on the lead page ---------------------------------------------------------------


@admin.display(description="Score explanation")
def score_breakdown_html(lead) -> str:
    """The lead's score as the rules that gave it points: name, category, points, totals and class."""
    explained = None
    if lead is not None and lead.pk is not None:
        labels = rule_labels(tenant=lead.tenant_id, model_ids=[lead.scoring_model_id]).get(lead.scoring_model_id, {})
        explained = score_explain(lead=lead, labels=labels)
    if explained is None:
        return "Not scored yet."
    category_names = dict(Category.choices)
    body = format_html_join(
        "", "<tr><td>{}</td><td>{} ({})</td><td class='num'>{}</td></tr>",
        ((line["rule"], category_names.get(line["category"], "—"),
          "fit" if line["category"] in FIT_CATEGORIES else "engagement", f"{line['points']:+d}")
         for line in sorted(explained["lines"], key=lambda x: (x["category"] not in FIT_CATEGORIES, -abs(x["points"])))),
    ) or format_html("<tr><td colspan='3'>No rule matched this lead.</td></tr>")
    version = (ScoringModel.objects.for_tenant(lead.tenant_id).filter(pk=lead.scoring_model_id).values_list("name", "version")
               .first())
    return format_html(
        "<table><thead><tr><th>Rule</th><th>Category</th><th>Points</th></tr></thead><tbody>{}</tbody>"
        "<tfoot><tr><td colspan='2'>Fit</td><td class='num'>{}</td></tr>"
        "<tr><td colspan='2'>Engagement</td><td class='num'>{}</td></tr>"
        "<tr><th colspan='2'>Score (sum clamped to 0–100){}</th><th class='num'>{}</th></tr>"
        "</tfoot></table><p>Band: <strong>{}</strong> · Class: <strong>{}</strong> — {}</p>",
        body, f"{explained['fit']:+d}", f"{explained['engagement']:+d}",
        f", {version[0]} v{version[1]}" if version else "", explained["score"],
        lead.band or "—", LeadClass(lead.lead_class).label if lead.lead_class in LeadClass.values else "—",
        lead.lead_class_reason or "",
    )


# --- the learned model (read-only) ------------------------------------------------------------------


class PredictiveFeatureInline(admin.TabularInline):
    """The weights of a learned model, largest effect first."""

    model = PredictiveFeature
    extra = 0
    fields = ("label", "kind", "key", "value", "weight", "mean", "scale")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return admin_rows(self.model, request).order_by("position")

    def has_view_permission(self, request, obj=None):
        return _allowed(request, roles_for(PREDICTIVE_VIEW))

    def has_add_permission(self, request, obj):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PredictiveModel)
class PredictiveModelAdmin(TenantScopedAdmin):
    """Each training of the tenant's learned model: status, held-out metrics, training size and the weights.
    Read-only: a model is trained (API, `manage.py scoring_train`, monthly on beat), never edited."""

    # The admin is the configuration editors' tool (managers see an empty admin index): managers read the learned
    # model through the API and on the lead page.
    view_roles = roles_for(PREDICTIVE_VIEW) & roles_for(CONFIG_EDIT)
    change_roles: set[str] = set()
    list_display = ("version", "status", "is_current", "trained_at", "closed_count", "won_count", "held_out_auc",
                    "points_auc")
    list_filter = ("status",)
    ordering = ("-version",)
    inlines = [PredictiveFeatureInline]
    readonly_fields = ("version", "status", "is_current", "requested_at", "requested_by", "trained_at",
                       "closed_count", "won_count", "metrics", "intercept", "platt_a", "platt_b", "message")
    fields = readonly_fields

    actions = ["suggest_draft"]

    @admin.action(description="Suggest a draft scoring model from the current learned model")
    def suggest_draft(self, request, queryset):
        from .predictive.suggest import predictive_draft_suggest

        tenant = getattr(request, "tenant", None)
        if tenant is None or not _allowed(request, roles_for(PREDICTIVE_TRAIN)):
            self.message_user(request, "Suggesting a draft is for the tenant's marketing ops and admins.",
                              messages.ERROR)
            return None
        try:
            draft = predictive_draft_suggest(tenant=tenant, actor=Actor.for_user(request.user))
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return None
        self.message_user(request, f"Draft v{draft.version} created from the learned model (MQL from "
                                   f"{draft.mql_threshold}): review it with the backtest, then publish it.")
        return HttpResponseRedirect(reverse("admin:scoring_scoringmodel_change", args=[draft.pk]))

    @admin.display(description="Held-out AUC")
    def held_out_auc(self, obj):
        return (obj.metrics or {}).get("auc", "—")

    @admin.display(description="Points model AUC (same leads)")
    def points_auc(self, obj):
        return (obj.metrics or {}).get("points_auc", "—")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
