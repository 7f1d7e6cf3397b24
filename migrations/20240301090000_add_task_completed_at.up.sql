-- stepwise:allow measured-lock because a nullable ADD COLUMN holds it only for the catalog change
ALTER TABLE tasks ADD COLUMN completed_at timestamptz;
