-- stepwise:no-transaction
-- Built without blocking writes to notes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_tags_idx ON notes USING gin (tags);
