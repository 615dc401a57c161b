-- Companion triggers skip rows on the flag alone again and run as their caller; their codes
-- and pending lists lose their policies (before the functions those use go).
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'vecpg' AND p.proname LIKE 'cmp\_%\_mark' LOOP
    EXECUTE replace(pg_get_functiondef(r.f), 'vecpg.sees_all(TG_RELID, session_user) AND ', '');
    EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER RESET search_path', r.f);
  END LOOP;
  FOR r IN SELECT pol.polname, c.oid::regclass AS rel FROM pg_policy pol
           JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'vecpg' LOOP
    EXECUTE format('DROP POLICY %I ON %s', r.polname, r.rel);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'vecpg' AND c.relkind = 'r' AND c.relrowsecurity LOOP
    EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', r.rel);
  END LOOP;
END $$;
-- Collections' tenant policies go with the function they call; their tables keep row-level
-- security on, so without a policy other roles see no rows rather than every row.
DROP FUNCTION IF EXISTS vecpg.my_tenants(oid) CASCADE;
DROP TABLE IF EXISTS vecpg.tenants;
DROP FUNCTION IF EXISTS vecpg.collection_table(name, name);
DROP FUNCTION IF EXISTS vecpg.sees_all(oid, name);
