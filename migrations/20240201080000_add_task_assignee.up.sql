-- Release 1.1: tasks can be assigned. Nullable, so 1.0 code keeps working.
-- stepwise:allow constraint-not-valid because the new column is NULL in every row, so the
-- validation has no reference to look up; the one scan of tasks under lock was accepted for 1.1.
-- stepwise:allow measured-lock because ADD COLUMN holds it only for the catalog change
ALTER TABLE tasks ADD COLUMN assignee_id bigint REFERENCES accounts (id) ON DELETE SET NULL;
