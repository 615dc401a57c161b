-- Full-text search: BM25 statistics and the helpers of analyzed text fields.
--
-- An analyzed VARCHAR field has a generated tsvector column (its terms, as the field's
-- text search configuration produces them) with a GIN index, so rows written by plain SQL
-- are analyzed too. A BM25 function's input field also has a generated length column
-- (its number of terms). vecpg.bm25_stats keeps, per such field, the number of rows and
-- their total length, kept by statement triggers in the writing transaction: a search
-- sees exactly the statistics of its snapshot.

-- a document's length: its terms, repeated ones counted (stop words are not terms)
CREATE FUNCTION vecpg.tsvector_length(tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce(sum(cardinality(u.positions)), 0)::integer FROM unnest($1) u $$;

-- the OR of a tsvector's lexemes, taken as they are (NULL when there is none)
CREATE FUNCTION vecpg.lexemes_any(tsvector) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT string_agg('''' || replace(replace(l, '\', '\\'), '''', '''''') || '''',
                            ' | ')::tsquery FROM unnest(tsvector_to_array($1)) l $$;

-- Milvus' text_match(field, words): rows holding any term of the words, analyzed
CREATE FUNCTION vecpg.text_match_query(regconfig, text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT vecpg.lexemes_any(to_tsvector($1, $2)) $$;

-- Milvus' phrase_match(field, phrase, slop) with slop > 0 (slop 0 is phraseto_tsquery):
-- the phrase's terms at distinct positions p_i of the document, with
-- max(p_i - q_i) - min(p_i - q_i) <= slop, q_i their positions in the phrase (Lucene's
-- sloppy phrase: slop 1 allows one word in between, slop 2 also "b a" for "a b").
CREATE FUNCTION vecpg.phrase_slop(doc tsvector, phrase tsvector, slop integer)
    RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    terms text[];
    qpos integer[];
    c integer;
    p integer;
    used integer[];
    ok boolean;
BEGIN
    SELECT array_agg(u.lexeme ORDER BY q), array_agg(q ORDER BY q) INTO terms, qpos
      FROM unnest(phrase) u, unnest(u.positions) q;
    IF terms IS NULL THEN
        RETURN false;
    END IF;
    -- the window of offsets p - q starts at one of the offsets found
    FOR c IN SELECT DISTINCT dp - qpos[k] FROM generate_subscripts(terms, 1) k,
                 unnest(doc) d, unnest(d.positions) dp WHERE d.lexeme = terms[k] LOOP
        used := '{}';
        ok := true;
        -- greedy, in phrase order: the earliest free position in each term's window
        -- (optimal: a repeated term's windows are equally long and come in order)
        FOR k IN 1 .. cardinality(terms) LOOP
            SELECT min(dp) INTO p FROM unnest(doc) d, unnest(d.positions) dp
             WHERE d.lexeme = terms[k] AND dp - qpos[k] BETWEEN c AND c + slop
               AND NOT dp = ANY (used);
            IF p IS NULL THEN
                ok := false;
                EXIT;
            END IF;
            used := used || p;
        END LOOP;
        IF ok THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END $$;

CREATE TABLE vecpg.bm25_stats (
    relid         oid    NOT NULL,   -- the collection's table (survives a rename)
    field         name   NOT NULL,   -- the BM25 function's input field
    docs          bigint NOT NULL DEFAULT 0,
    total_length  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (relid, field)
);
GRANT SELECT ON vecpg.bm25_stats TO PUBLIC;

-- AFTER ... FOR EACH STATEMENT with transition tables vecpg_new / vecpg_old;
-- TG_ARGV: the length column, the field. SECURITY DEFINER: any role that may write the
-- collection keeps its statistics, none may write them directly.
CREATE FUNCTION vecpg.bm25_stats_update() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n_new bigint := 0;
    l_new bigint := 0;
    n_old bigint := 0;
    l_old bigint := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT count(*), coalesce(sum(%I), 0) FROM vecpg_new', TG_ARGV[0])
            INTO n_new, l_new;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        EXECUTE format('SELECT count(*), coalesce(sum(%I), 0) FROM vecpg_old', TG_ARGV[0])
            INTO n_old, l_old;
    END IF;
    IF n_new <> n_old OR l_new <> l_old THEN
        UPDATE vecpg.bm25_stats SET docs = docs + n_new - n_old,
               total_length = total_length + l_new - l_old
         WHERE relid = TG_RELID AND field = TG_ARGV[1];
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION vecpg.bm25_stats_truncate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE vecpg.bm25_stats SET docs = 0, total_length = 0 WHERE relid = TG_RELID;
    RETURN NULL;
END $$;

-- vecpg.bm25_stats is written by these functions only (and the triggers): a role that
-- creates a collection records its true statistics, and rows of dropped tables go
CREATE FUNCTION vecpg.bm25_stats_init(tbl regclass, fld name, len_column name)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    total bigint;
BEGIN
    EXECUTE format('SELECT count(*), coalesce(sum(%I), 0) FROM %s', len_column, tbl)
        INTO n, total;
    INSERT INTO vecpg.bm25_stats (relid, field, docs, total_length)
        VALUES (tbl, fld, n, total)
        ON CONFLICT (relid, field) DO UPDATE SET docs = n, total_length = total;
END $$;

CREATE FUNCTION vecpg.bm25_stats_vacuum() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM vecpg.bm25_stats s WHERE NOT EXISTS (
        SELECT 1 FROM pg_class c WHERE c.oid = s.relid) $$;

GRANT EXECUTE ON FUNCTION vecpg.tsvector_length(tsvector), vecpg.lexemes_any(tsvector),
    vecpg.text_match_query(regconfig, text), vecpg.phrase_slop(tsvector, tsvector, integer),
    vecpg.bm25_stats_init(regclass, name, name), vecpg.bm25_stats_vacuum() TO PUBLIC;
