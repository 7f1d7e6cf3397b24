#!/usr/bin/env bash
# gen_migrations.sh OUT N: N trivial migrations (one table with 3 columns and one index each),
# as <version>_<name>.up.sql files in OUT/golang and the same SQL in OUT/all.sql (the psql floor).
# Same SQL as the peers' benchmark generator.
set -euo pipefail
out=$1; n=$2
rm -rf "$out"; mkdir -p "$out/golang"
: > "$out/all.sql"
for i in $(seq 1 "$n"); do
  v=$(printf '%06d' "$i")
  sql="CREATE TABLE t_$v (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX t_${v}_name_idx ON t_$v (name);"
  echo "$sql" > "$out/golang/${v}_t_$v.up.sql"
  echo "DROP TABLE t_$v;" > "$out/golang/${v}_t_$v.down.sql"
  echo "$sql" >> "$out/all.sql"
done
