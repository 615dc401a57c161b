#!/bin/sh
# Run by the postgres image's entrypoint, once, on an empty data directory: installs vecpg's
# SQL functions into $POSTGRES_DB so that plain-SQL users have them without Python.
#
# The whole vecpg schema (catalog tables and functions) is installed and upgraded by vecpg's
# alembic migrations when the Python client connects. Those migrations create the catalog
# tables with CREATE TABLE, so sql/001_catalog.sql is not run here: tables created without
# alembic's version row would make that first migration fail. The function files use
# CREATE OR REPLACE, so the migration simply replaces them. List new function files below,
# in order.
set -e

sql_dir="${VECPG_SQL_DIR:-/opt/vecpg/sql}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --single-transaction \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c 'CREATE EXTENSION IF NOT EXISTS vector' \
    -c 'CREATE SCHEMA IF NOT EXISTS vecpg' \
    -f "$sql_dir/002_binary_metrics.sql"
