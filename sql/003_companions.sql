-- Companion (quantized) indexes and planner calibration.
--
-- A companion index (IVF_SQ8, IVF_PQ, ANNOY) keeps its trained model here and its per-row
-- codes in a table of its own, vecpg."cmp_<id>_v<version>". Rows it does not cover yet are
-- listed in vecpg."cmp_<id>_pending" by a trigger on the collection table, so searches scan
-- them exactly: Postgres stays the source of truth.
ALTER TABLE vecpg.indexes ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
-- measured recall and latency of each search setting, written by the planner's calibration
ALTER TABLE vecpg.indexes ADD COLUMN calibration jsonb;
-- set while a companion index (re)builds: writers then leave new rows to the pending list
ALTER TABLE vecpg.indexes ADD COLUMN build_started timestamptz;

CREATE TABLE vecpg.index_models (
    index_id    bigint      NOT NULL REFERENCES vecpg.indexes (id) ON DELETE CASCADE,
    version     bigint      NOT NULL,
    model_bytes bigint      NOT NULL,
    -- rows encoded at build, build seconds, bytes per vector, ...
    stats       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    built_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (index_id, version)
);

-- the trained model (centroids, codebooks, annoy trees) in parts: a bytea value caps at 1 GB
CREATE TABLE vecpg.index_model_parts (
    index_id    bigint      NOT NULL,
    version     bigint      NOT NULL,
    part        integer     NOT NULL,
    data        bytea       NOT NULL,
    PRIMARY KEY (index_id, version, part),
    FOREIGN KEY (index_id, version) REFERENCES vecpg.index_models (index_id, version)
        ON DELETE CASCADE
);
