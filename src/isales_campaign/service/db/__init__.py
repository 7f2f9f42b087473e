"""Persistence: schema, engine, migrations and the campaign store."""
