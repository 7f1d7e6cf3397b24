-- The statements release 2.0.0's code runs (see 1.0.0.sql): completing tasks, the project
-- overview. 2.0.0 runs from 20240301093000 (the view) on; the enum label 'blocked' arrives only
-- with 20240315100000, so 2.0.0's code reads statuses as text and does not write 'blocked'
-- (a probe that did would fail at 20240301093000).
INSERT INTO accounts (email, display_name) VALUES ('ada@example.com', 'Ada');

INSERT INTO projects (account_id, name)
SELECT id, 'Launch' FROM accounts WHERE email = 'ada@example.com';

INSERT INTO tasks (project_id, title, assignee_id)
SELECT p.id, v.title, p.account_id
FROM projects p, (VALUES ('Write the announcement'), ('Book the venue')) AS v (title)
WHERE p.name = 'Launch';

UPDATE tasks SET status = 'done', completed_at = now()
WHERE title = 'Book the venue' AND completed_at IS NULL;

SELECT project_id, name, task_count, open_task_count, last_completed_at
FROM project_overview
WHERE account_id = (SELECT id FROM accounts WHERE email = 'ada@example.com')
ORDER BY name;

SELECT t.id, t.title, t.status::text AS status, t.completed_at
FROM tasks t
WHERE t.assignee_id = (SELECT id FROM accounts WHERE email = 'ada@example.com')
  AND t.status::text NOT IN ('done', 'blocked')
ORDER BY t.id;
