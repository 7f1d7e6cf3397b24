-- PostgreSQL cannot drop an enum label: rebuild the type without it.
UPDATE tasks SET status = 'doing' WHERE status = 'blocked';
DROP VIEW project_overview;
ALTER TYPE task_status RENAME TO task_status_old;
CREATE TYPE task_status AS ENUM ('todo', 'doing', 'done');
ALTER TABLE tasks
  ALTER COLUMN status DROP DEFAULT,
  ALTER COLUMN status TYPE task_status USING status::text::task_status,
  ALTER COLUMN status SET DEFAULT 'todo';
DROP TYPE task_status_old;
CREATE VIEW project_overview AS
SELECT p.id AS project_id,
       p.account_id,
       p.name,
       count(t.id) AS task_count,
       count(t.id) FILTER (WHERE t.status <> 'done') AS open_task_count,
       max(t.completed_at) AS last_completed_at
FROM projects p
LEFT JOIN tasks t ON t.project_id = p.id
GROUP BY p.id, p.account_id, p.name;
