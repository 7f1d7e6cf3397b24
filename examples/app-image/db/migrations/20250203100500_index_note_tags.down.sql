-- stepwise:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS notes_tags_idx;
