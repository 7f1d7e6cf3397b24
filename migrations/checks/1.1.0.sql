-- The statements release 1.1.0's code runs (see 1.0.0.sql): as 1.0.0, plus assigning tasks
-- and the "assigned to me" list. 1.1.0 runs from 20240201080000 (the assignee column) on.
INSERT INTO accounts (email, display_name) VALUES ('ada@example.com', 'Ada'), ('bob@example.com', 'Bob');

INSERT INTO projects (account_id, name)
SELECT id, 'Launch' FROM accounts WHERE email = 'ada@example.com';

INSERT INTO tasks (project_id, title, due_date, assignee_id)
SELECT p.id, 'Write the announcement', DATE '2024-03-01',
       (SELECT id FROM accounts WHERE email = 'bob@example.com')
FROM projects p JOIN accounts a ON a.id = p.account_id
WHERE a.email = 'ada@example.com' AND p.name = 'Launch';

UPDATE tasks SET assignee_id = NULL, status = 'doing'
WHERE title = 'Write the announcement'
  AND project_id IN (SELECT id FROM projects WHERE name = 'Launch');

UPDATE tasks SET assignee_id = (SELECT id FROM accounts WHERE email = 'ada@example.com')
WHERE title = 'Write the announcement';

SELECT t.id, t.title, t.status, t.due_date, p.name AS project
FROM tasks t JOIN projects p ON p.id = t.project_id
WHERE t.assignee_id = (SELECT id FROM accounts WHERE email = 'ada@example.com')
  AND t.status <> 'done'
ORDER BY t.due_date NULLS LAST, t.id;

-- Deleting an account unassigns its tasks (ON DELETE SET NULL).
DELETE FROM accounts WHERE email = 'bob@example.com';
