"""Admin site branding."""
from django.contrib import admin

admin.site.site_header = "leadmgmt administration"
admin.site.site_title = "leadmgmt"
admin.site.index_title = "Tenant settings and data"
