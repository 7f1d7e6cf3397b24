-- Release 1.1: tasks can be assigned. Nullable, so 1.0 code keeps working.
ALTER TABLE tasks ADD COLUMN assignee_id bigint REFERENCES accounts (id) ON DELETE SET NULL;
