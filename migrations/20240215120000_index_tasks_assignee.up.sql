-- stepwise:no-transaction
-- Built without blocking writes on a large tasks table.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_assignee_id_idx ON tasks (assignee_id);
