UPDATE tasks SET completed_at = NULL;
