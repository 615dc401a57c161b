#!/bin/sh
# Run once by compose.citus.yml's "init" service: makes the coordinator and the workers one
# Citus cluster. Safe to run again (IF NOT EXISTS; citus_add_node returns an existing node).
set -eu
nodes="coordinator ${CITUS_WORKERS:-worker1 worker2}"
for h in $nodes; do
  until pg_isready -q -h "$h" -U postgres; do sleep 1; done
done
for h in $nodes; do
  psql -q -v ON_ERROR_STOP=1 -h "$h" -U postgres -d postgres -c 'CREATE EXTENSION IF NOT EXISTS citus'
done
# pgvector on the coordinator only: Citus propagates it to the workers (and refuses extension
# DDL run on a worker once it is in the cluster; the image's init script made it there)
psql -q -v ON_ERROR_STOP=1 -h coordinator -U postgres -d postgres \
    -c 'CREATE EXTENSION IF NOT EXISTS vector' \
    -c "SELECT citus_set_coordinator_host('coordinator', 5432)" >/dev/null
for h in ${CITUS_WORKERS:-worker1 worker2}; do
  psql -q -v ON_ERROR_STOP=1 -h coordinator -U postgres -d postgres \
      -c "SELECT citus_add_node('$h', 5432)" >/dev/null
done
psql -v ON_ERROR_STOP=1 -h coordinator -U postgres -d postgres \
    -c "SELECT nodename, nodeport, noderole FROM pg_dist_node ORDER BY nodeid"
