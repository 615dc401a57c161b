DROP FUNCTION IF EXISTS vecpg.bm25_stats_vacuum();
DROP FUNCTION IF EXISTS vecpg.bm25_stats_init(regclass, name, name);
DROP FUNCTION IF EXISTS vecpg.bm25_stats_truncate() CASCADE;
DROP FUNCTION IF EXISTS vecpg.bm25_stats_update() CASCADE;
DROP TABLE IF EXISTS vecpg.bm25_stats;
DROP FUNCTION IF EXISTS vecpg.phrase_slop(tsvector, tsvector, integer);
DROP FUNCTION IF EXISTS vecpg.text_match_query(regconfig, text);
DROP FUNCTION IF EXISTS vecpg.lexemes_any(tsvector);
DROP FUNCTION IF EXISTS vecpg.tsvector_length(tsvector) CASCADE;
