-- every companion's tables, sequences and trigger functions live in schema vecpg
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'vecpg' AND p.proname LIKE 'cmp\_%' LOOP
    EXECUTE format('DROP FUNCTION %s CASCADE', r.f);
  END LOOP;
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'vecpg' AND c.relname LIKE 'cmp\_%' AND c.relkind IN ('r', 'S')
           ORDER BY c.relkind DESC LOOP  -- tables first: they take their identity sequences along
    EXECUTE format('DROP %s IF EXISTS vecpg.%I CASCADE',
                   CASE r.relkind WHEN 'r' THEN 'TABLE' ELSE 'SEQUENCE' END, r.relname);
  END LOOP;
  -- the popcount indexes that come with indexes on binary fields (see client.create_index)
  FOR r IN SELECT c.oid::regclass AS ix FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
           WHERE d.classid = 'pg_class'::regclass AND c.relkind = 'i'
             AND d.refobjid = 'vecpg.popcount(bit)'::regprocedure LOOP
    EXECUTE format('DROP INDEX %s', r.ix);
  END LOOP;
END $$;
DROP TABLE IF EXISTS vecpg.index_model_parts;
DROP TABLE IF EXISTS vecpg.index_models;
ALTER TABLE vecpg.indexes DROP COLUMN IF EXISTS calibration;
ALTER TABLE vecpg.indexes DROP COLUMN IF EXISTS build_started;
ALTER TABLE vecpg.indexes DROP COLUMN IF EXISTS id;
