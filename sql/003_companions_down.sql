DROP TABLE IF EXISTS vecpg.index_models;
ALTER TABLE vecpg.indexes DROP COLUMN IF EXISTS calibration;
ALTER TABLE vecpg.indexes DROP COLUMN IF EXISTS id;
