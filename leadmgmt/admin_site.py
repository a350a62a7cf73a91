"""Admin site branding, and an index grouped by what people do rather than by Django app."""
from django.contrib import admin

admin.site.site_header = "leadmgmt administration"
admin.site.site_title = "leadmgmt"
admin.site.index_title = "Tenant settings and data"

# Index and sidebar sections, in order: what marketing ops tune first, then the data, then what tenant
# admins and platform operators run. A registered model in no section keeps its app's own section
# (placed after the tuning sections), so a new app such as nurture shows up without an entry here.
ADMIN_SECTIONS: list[tuple[str, list[str]]] = [
    ("Scoring", ["scoring.ScoringModel", "scoring.PredictiveModel"]),
    ("Routing and SLAs", ["routing.RoutingRule", "routing.Territory", "routing.SlaPolicy", "routing.BusinessHours",
                          "routing.RoutingSettings"]),
    ("Lead capture", ["leads.LeadForm", "leads.SignalType"]),
    ("Reasons to reject or disqualify", ["routing.RejectionReason"]),
]
LATER_SECTIONS: list[tuple[str, list[str]]] = [
    ("Leads and accounts", ["leads.Lead", "leads.Account", "leads.Signal", "leads.Activity", "leads.StageTransition"]),
    ("History (read-only)", ["routing.Assignment", "routing.SlaClock", "routing.Escalation", "routing.Notification",
                             "audit.AuditEvent"]),
    ("Workspace: people, API keys, agents", ["tenancy.Team", "tenancy.Membership", "tenancy.ApiKey",
                                             "tenancy.AgentSetting"]),
    ("Platform (superusers)", ["tenancy.Tenant", "auth.User", "auth.Group"]),
]


def sections_from_apps(app_list: list[dict]) -> list[dict]:
    """Regroup Django's per-app list into ADMIN_SECTIONS, the unlisted apps, then LATER_SECTIONS."""
    entries = {f"{app['app_label']}.{m['object_name']}": (app, m) for app in app_list for m in app["models"]}
    placed: set[str] = set()

    def section(name: str, labels: list[str]) -> dict | None:
        present = [label for label in labels if label in entries]
        if not present:
            return None
        placed.update(present)
        first_app = entries[present[0]][0]
        return {"name": name, "app_label": first_app["app_label"], "app_url": first_app["app_url"],
                "has_module_perms": True, "models": [entries[label][1] for label in present]}

    head = [s for s in (section(name, labels) for name, labels in ADMIN_SECTIONS) if s]
    tail = [s for s in (section(name, labels) for name, labels in LATER_SECTIONS) if s]
    rest = []
    for app in app_list:
        models = [m for m in app["models"] if f"{app['app_label']}.{m['object_name']}" not in placed]
        if models:
            rest.append({**app, "models": models})
    return head + rest + tail


_django_app_list = admin.site.get_app_list


def _sectioned_app_list(request, app_label=None):
    app_list = _django_app_list(request, app_label)
    return app_list if app_label is not None else sections_from_apps(app_list)


admin.site.get_app_list = _sectioned_app_list
