DROP FUNCTION IF EXISTS vecpg.tanimoto(bit, bit);
DROP FUNCTION IF EXISTS vecpg.tanimoto_distance(bit, bit);
DROP FUNCTION IF EXISTS vecpg.is_substructure(bit, bit);
DROP FUNCTION IF EXISTS vecpg.is_superstructure(bit, bit);
DROP FUNCTION IF EXISTS vecpg.substructure_distance(bit, bit);
DROP FUNCTION IF EXISTS vecpg.superstructure_distance(bit, bit);
DROP FUNCTION IF EXISTS vecpg.hamming_distance(bit, bit);
DROP FUNCTION IF EXISTS vecpg.jaccard_distance(bit, bit);
DROP FUNCTION IF EXISTS vecpg.popcount(bit);
