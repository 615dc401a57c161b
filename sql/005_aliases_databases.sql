-- Milvus aliases and databases.
--
-- An alias is another name of one collection, resolved wherever a collection name is
-- taken; a database is a Postgres schema holding collection tables ("default" is the
-- schema a client connects to), listed here so an empty one can be listed too.
CREATE TABLE vecpg.aliases (
    schema_name  name        NOT NULL,
    alias        name        NOT NULL,
    collection   name        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, alias),
    FOREIGN KEY (schema_name, collection) REFERENCES vecpg.collections (schema_name, name)
        ON UPDATE CASCADE ON DELETE CASCADE
);

CREATE TABLE vecpg.databases (
    schema_name  name        PRIMARY KEY,
    properties   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- as the catalog (004): rows of collections the role may read; writes by grants alone
ALTER TABLE vecpg.aliases ENABLE ROW LEVEL SECURITY;
CREATE POLICY vecpg_read ON vecpg.aliases FOR SELECT USING (has_table_privilege(
    vecpg.collection_table(schema_name, collection), 'SELECT'));
CREATE POLICY vecpg_insert ON vecpg.aliases FOR INSERT WITH CHECK (true);
CREATE POLICY vecpg_update ON vecpg.aliases FOR UPDATE USING (true);
CREATE POLICY vecpg_delete ON vecpg.aliases FOR DELETE USING (true);
