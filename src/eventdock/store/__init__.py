"""The store: tables, migrations, queries and the group-commit writer."""
