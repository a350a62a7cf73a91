"""CSV imports: jobs, refused rows, the leads each import created or merged, remembered mappings; all under row-level security."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from leadmgmt.db.rls import TenantRowLevelSecurity


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('tenancy', '0005_row_level_security'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ImportJob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_by_name', models.CharField(blank=True, max_length=200)),
                ('file_name', models.CharField(blank=True, max_length=255)),
                ('content', models.BinaryField(help_text='The file as uploaded.')),
                ('file_size', models.PositiveBigIntegerField()),
                ('file_sha256', models.CharField(max_length=64)),
                ('encoding', models.CharField(max_length=16)),
                ('delimiter', models.CharField(max_length=1)),
                ('has_header', models.BooleanField(default=True)),
                ('headers', models.JSONField(default=list, help_text="Column names (from the header row, or 'Column 1' …).")),
                ('row_count', models.PositiveIntegerField(default=0, help_text='Data rows (the header and blank lines not counted).')),
                ('mapping', models.JSONField(blank=True, default=list)),
                ('mapping_remembered', models.BooleanField(default=False, help_text="The suggestion is the tenant's last mapping of files with these columns.")),
                ('state', models.CharField(choices=[('uploaded', 'Uploaded'), ('mapped', 'Mapped'), ('previewed', 'Previewed'), ('running', 'Running'), ('finished', 'Finished'), ('failed', 'Failed'), ('undone', 'Undone')], default='uploaded', max_length=16)),
                ('preview', models.JSONField(blank=True, null=True)),
                ('created', models.PositiveIntegerField(default=0)),
                ('merged', models.PositiveIntegerField(default=0)),
                ('possible_duplicates', models.PositiveIntegerField(default=0)),
                ('refused', models.PositiveIntegerField(default=0)),
                ('rows_done', models.PositiveIntegerField(default=0)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('undone_at', models.DateTimeField(blank=True, null=True)),
                ('error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='ImportLead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('lead_id', models.UUIDField()),
                ('created', models.BooleanField()),
                ('before', models.JSONField(blank=True, default=dict, help_text='{field: value before the merge filled it}.')),
                ('job', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='leads', to='workspace.importjob')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant')),
            ],
        ),
        migrations.CreateModel(
            name='ImportMapping',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('header_key', models.CharField(help_text='sha256 of the normalised header names.', max_length=64)),
                ('headers', models.JSONField(default=list)),
                ('mapping', models.JSONField(default=list)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant')),
            ],
        ),
        migrations.CreateModel(
            name='ImportRowError',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('phase', models.CharField(choices=[('preview', 'Dry run'), ('run', 'Run')], max_length=8)),
                ('line', models.PositiveIntegerField()),
                ('errors', models.JSONField(default=dict)),
                ('raw', models.JSONField(default=list)),
                ('job', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='row_errors', to='workspace.importjob')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.tenant')),
            ],
            options={
                'ordering': ['line'],
            },
        ),
        migrations.AddIndex(
            model_name='importjob',
            index=models.Index(fields=['tenant', 'created_at'], name='importjob_tenant_created'),
        ),
        migrations.AddConstraint(
            model_name='importlead',
            constraint=models.UniqueConstraint(fields=('tenant', 'job', 'lead_id'), name='importlead_unique_lead'),
        ),
        migrations.AddConstraint(
            model_name='importmapping',
            constraint=models.UniqueConstraint(fields=('tenant', 'header_key'), name='importmapping_unique_headers'),
        ),
        migrations.AddConstraint(
            model_name='importrowerror',
            constraint=models.UniqueConstraint(fields=('tenant', 'job', 'phase', 'line'), name='importrowerror_unique_line'),
        ),
        TenantRowLevelSecurity(
            "workspace_importjob",
            "workspace_importrowerror",
            "workspace_importlead",
            "workspace_importmapping",
        ),
    ]
