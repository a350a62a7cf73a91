"""CSV downloads of the UI's lead lists: My queue (`/queue/export/`) and the manager's team queue
(`/manager/export/`), with the list's filters and the columns ticked in the page's "Export CSV" chooser. Both
stream through `workspace.export.leads_export_csv`, like the API's `/api/v1/leads/export/`; who may export is the
role matrix's `lead.export`, the rows are those the page itself lists."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.utils.html import escape
from django.views.decorators.http import require_GET

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.roles import LEAD_EXPORT
from leads.selectors import LeadViewer, lead_queue, lead_queue_facets

from . import forms
from .export import export_columns_parse, export_filename, leads_export_csv
from .manager_forms import QueueFilterForm as ManagerQueueFilterForm
from .manager_selectors import scope_reps, team_queue
from .manager_views import manager_view
from .views import workspace_required


def _csv_response(request, queryset, *, source: str, filters: dict):
    viewer = LeadViewer(tenant=request.tenant, membership=request.membership)
    if not viewer.may(LEAD_EXPORT):
        raise PermissionDenied("You may not export leads.")
    try:
        columns = export_columns_parse(request.GET.getlist("columns"))
    except ValidationError as error:
        return HttpResponseBadRequest(escape(" ".join(error.message_dict["columns"])), content_type="text/plain")
    lines = leads_export_csv(tenant=request.tenant, actor=Actor.for_user(request.user), queryset=queryset,
                             columns=columns, filters=filters, source=source)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(tenant=request.tenant)}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@workspace_required
def queue_export(request):
    """My queue as CSV: the member's open leads with the queue's filters, in the queue's order."""
    facets = lead_queue_facets(tenant=request.tenant, user=request.user)
    form = forms.QueueFilterForm(request.GET or None, sources=facets["sources"], bands=facets["bands"])
    filters = form.filters()
    queryset = lead_queue(tenant=request.tenant, user=request.user, filters=filters)
    return _csv_response(request, queryset, source="queue", filters={k: [str(v)] for k, v in filters.items()})


@require_GET
@manager_view
def manager_queue_export(request, scope):
    """The team queue as CSV: the scope's open owned leads with the page's rep and status filters."""
    filters = ManagerQueueFilterForm(request.GET or None, reps=scope_reps(scope=scope))
    rep, status = filters.value("rep"), filters.value("status")
    queryset = team_queue(scope=scope, owner_id=int(rep) if rep else None, status=status or None)
    used = {k: [str(v)] for k, v in (("rep", rep), ("status", status)) if v}
    return _csv_response(request, queryset, source="team_queue", filters=used)
