"""The warehouse: tables, views, roles, migrations, the file manifest, the platform."""
