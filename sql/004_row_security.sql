-- Row-level security and tenants.
--
-- A role that does not see every row of a collection (row-level security applies to it:
-- a tenant) must not see other rows through vecpg's own tables either: companion codes
-- and pending lists are readable only by roles that see every row, models too (they are
-- trained on every row), and the catalog shows a role only the collections it may read.
-- Writes to vecpg's tables stay governed by grants alone.

-- Whether ``who`` reads every row of ``tbl``: it may SELECT it and row-level security does
-- not apply to it (off on the table, or a superuser, BYPASSRLS, or the owner's privileges
-- unless FORCE ROW LEVEL SECURITY). NULL (false) for a table that no longer exists.
-- (PL/pgSQL rather than SQL functions, here and below, with generic plans whatever the
-- caller's plan_cache_mode: a tenant's every statement calls them through its policy, and
-- PL/pgSQL keeps their plans for the session. Planned afresh each time, they cost 0.4 ms.)
CREATE FUNCTION vecpg.sees_all(tbl oid, who name DEFAULT current_user) RETURNS boolean
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN (SELECT pg_catalog.has_table_privilege(who, c.oid, 'SELECT')
             AND (NOT c.relrowsecurity OR r.rolsuper OR r.rolbypassrls
                  OR (NOT c.relforcerowsecurity
                      AND pg_catalog.pg_has_role(who, c.relowner, 'USAGE')))
          FROM pg_catalog.pg_class c, pg_catalog.pg_roles r
          WHERE c.oid = tbl AND r.rolname = who);
END $$;

-- The table of collection (schema_name, name), NULL if it does not exist.
CREATE FUNCTION vecpg.collection_table(schema_name name, name name) RETURNS oid
LANGUAGE sql STABLE AS $$
  SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema_name, name))::oid
$$;

-- Which values of its collection's tenant field each role may see and write
-- (Client.grant_tenant); ``role`` is an OID so renaming a role keeps its grants.
CREATE TABLE vecpg.tenants (
    schema_name  name NOT NULL,
    collection   name NOT NULL,
    role         oid  NOT NULL,
    value        text NOT NULL,
    PRIMARY KEY (schema_name, collection, role, value),
    FOREIGN KEY (schema_name, collection) REFERENCES vecpg.collections (schema_name, name)
        ON UPDATE CASCADE ON DELETE CASCADE
);

-- The tenant values the current user sees in ``tbl``: NULL when it sees every row, else
-- those granted to any role it is a member of (an empty array: none). A collection's
-- tenant policy compares its tenant field with this.
CREATE FUNCTION vecpg.my_tenants(tbl oid) RETURNS text[]
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  IF vecpg.sees_all(tbl) THEN
    RETURN NULL;
  END IF;
  RETURN (SELECT coalesce(array_agg(DISTINCT t.value ORDER BY t.value), '{}')
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          JOIN vecpg.tenants t ON t.schema_name = n.nspname AND t.collection = c.relname
          JOIN pg_catalog.pg_roles r ON r.oid = t.role
          WHERE c.oid = tbl AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'));
END $$;

-- The catalog: a row is visible to roles that may read its collection's table.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['collections', 'indexes', 'partitions'] LOOP
    EXECUTE format('ALTER TABLE vecpg.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY vecpg_read ON vecpg.%I FOR SELECT USING (has_table_privilege('
                   'vecpg.collection_table(schema_name, %I), ''SELECT''))', t,
                   CASE t WHEN 'collections' THEN 'name' ELSE 'collection' END);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['collections', 'indexes', 'partitions', 'index_models',
                           'index_model_parts', 'tenants'] LOOP
    IF t IN ('index_models', 'index_model_parts', 'tenants') THEN
      EXECUTE format('ALTER TABLE vecpg.%I ENABLE ROW LEVEL SECURITY', t);
    END IF;
    EXECUTE format('CREATE POLICY vecpg_insert ON vecpg.%I FOR INSERT WITH CHECK (true)', t);
    EXECUTE format('CREATE POLICY vecpg_update ON vecpg.%I FOR UPDATE USING (true)', t);
    EXECUTE format('CREATE POLICY vecpg_delete ON vecpg.%I FOR DELETE USING (true)', t);
  END LOOP;
END $$;

-- Models are trained on every row: only roles that see every row read them.
CREATE POLICY vecpg_read ON vecpg.index_models FOR SELECT USING (EXISTS (
  SELECT 1 FROM vecpg.indexes i WHERE i.id = index_id
    AND vecpg.sees_all(vecpg.collection_table(i.schema_name, i.collection))));
CREATE POLICY vecpg_read ON vecpg.index_model_parts FOR SELECT USING (EXISTS (
  SELECT 1 FROM vecpg.indexes i WHERE i.id = index_id
    AND vecpg.sees_all(vecpg.collection_table(i.schema_name, i.collection))));
-- A role sees the tenant grants of the roles it is a member of.
CREATE POLICY vecpg_read ON vecpg.tenants FOR SELECT USING (pg_has_role(current_user, role, 'MEMBER'));
GRANT SELECT ON vecpg.tenants TO PUBLIC;

-- Existing companion indexes: codes and pending lists readable only by roles that see every
-- row, and their trigger writes pending rows as its owner (tenants have no rights on the
-- list) but skips rows only for a writer that may encode them itself.
DO $$
DECLARE r record; tbl oid; rel text;
  -- a definer's function needs a fixed search path: pgvector's schema for vector comparison
  ext name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
               WHERE e.extname = 'vector');
BEGIN
  FOR r IN SELECT id, version, schema_name, collection FROM vecpg.indexes
           WHERE index_type IN ('IVF_SQ8', 'IVF_PQ', 'ANNOY') LOOP
    tbl := vecpg.collection_table(r.schema_name, r.collection);
    CONTINUE WHEN tbl IS NULL;
    FOREACH rel IN ARRAY ARRAY[format('cmp_%s_pending', r.id), format('cmp_%s_v%s', r.id, r.version)] LOOP
      CONTINUE WHEN to_regclass(format('vecpg.%I', rel)) IS NULL;
      EXECUTE format('ALTER TABLE vecpg.%I ENABLE ROW LEVEL SECURITY', rel);
      EXECUTE format('CREATE POLICY vecpg_sees_all ON vecpg.%I USING ((SELECT vecpg.sees_all(%s)))',
                     rel, tbl);
    END LOOP;
    IF to_regprocedure(format('vecpg.cmp_%s_mark()', r.id)) IS NOT NULL THEN
      EXECUTE replace(pg_get_functiondef(format('vecpg.cmp_%s_mark()', r.id)::regprocedure),
                      'IF coalesce(',
                      'IF vecpg.sees_all(TG_RELID, session_user) AND coalesce(');
      EXECUTE format('ALTER FUNCTION vecpg.cmp_%s_mark() SECURITY DEFINER '
                     'SET search_path = pg_catalog, %I, pg_temp', r.id, ext);
    END IF;
  END LOOP;
END $$;
