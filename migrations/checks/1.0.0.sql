-- The statements release 1.0.0's code runs. `stepwise check` runs them at every schema version
-- 1.0.0 runs on (its compatibility range in releases.json), in a transaction it rolls back.
-- Sign-up, a project, tasks, the task list.
INSERT INTO accounts (email, display_name) VALUES ('ada@example.com', 'Ada');

INSERT INTO projects (account_id, name)
SELECT id, 'Launch' FROM accounts WHERE email = 'ada@example.com';

INSERT INTO tasks (project_id, title, due_date)
SELECT p.id, 'Write the announcement', DATE '2024-02-01'
FROM projects p JOIN accounts a ON a.id = p.account_id
WHERE a.email = 'ada@example.com' AND p.name = 'Launch';

UPDATE tasks SET status = 'doing'
WHERE title = 'Write the announcement'
  AND project_id IN (SELECT id FROM projects WHERE name = 'Launch');

SELECT t.id, t.title, t.status, t.due_date, t.created_at
FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE p.account_id = (SELECT id FROM accounts WHERE email = 'ada@example.com')
ORDER BY t.created_at, t.id;

UPDATE accounts SET display_name = 'Ada L.' WHERE email = 'ada@example.com';

DELETE FROM projects
WHERE name = 'Launch' AND account_id = (SELECT id FROM accounts WHERE email = 'ada@example.com');
