DROP TABLE IF EXISTS vecpg.aliases;
DROP TABLE IF EXISTS vecpg.databases;
