-- Data backfill: tasks already done get a completion time (best known: their creation time).
UPDATE tasks SET completed_at = created_at WHERE status = 'done' AND completed_at IS NULL;
