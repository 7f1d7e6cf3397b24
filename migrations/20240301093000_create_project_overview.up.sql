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
