"""The table the cache falls back to while Redis is unreachable (dmp/cache.py): Django's
database cache table, created here so that no deployment step can forget it."""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "dmp_cache_fallback"


def create_table(apps, schema_editor):
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("dmp", "0013_one_emergency_opening")]

    operations = [migrations.RunPython(create_table, drop_table)]
