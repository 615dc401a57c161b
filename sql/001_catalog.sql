-- vecpg catalog: what collections, indexes and partitions exist, with their schema and
-- parameters. Collection data itself lives in ordinary tables, one per collection.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS vecpg;

CREATE TABLE vecpg.collections (
    schema_name  name        NOT NULL,
    name         name        NOT NULL,
    -- CollectionSchema.to_dict(): fields, enable_dynamic_field, description
    schema       jsonb       NOT NULL,
    -- per-collection settings, e.g. {"metrics": {"<vector field>": "COSINE"}}
    properties   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, name)
);

CREATE TABLE vecpg.indexes (
    schema_name  name        NOT NULL,
    collection   name        NOT NULL,
    index_name   name        NOT NULL,
    field_name   name        NOT NULL,
    index_type   text        NOT NULL,
    metric_type  text,
    params       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- the Postgres index that implements it (NULL for FLAT, which is an exact scan)
    pg_index     name,
    -- building | ready | failed: a companion index is usable only when ready
    state        text        NOT NULL DEFAULT 'ready',
    -- bumped at every rebuild; processes cache derived data keyed by it
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, collection, index_name),
    FOREIGN KEY (schema_name, collection) REFERENCES vecpg.collections (schema_name, name)
        ON UPDATE CASCADE ON DELETE CASCADE
);

CREATE TABLE vecpg.partitions (
    schema_name  name        NOT NULL,
    collection   name        NOT NULL,
    name         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, collection, name),
    FOREIGN KEY (schema_name, collection) REFERENCES vecpg.collections (schema_name, name)
        ON UPDATE CASCADE ON DELETE CASCADE
);
