DROP TABLE IF EXISTS vecpg.partitions;
DROP TABLE IF EXISTS vecpg.indexes;
DROP TABLE IF EXISTS vecpg.collections;
