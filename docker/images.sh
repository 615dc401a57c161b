#!/usr/bin/env bash
# Build the Postgres images vecpg's tests and compose files use, when they are missing:
#   vecpg/pgvector:pg17   Debian 13 PostgreSQL 17 + pgvector (debootstrap, docker import)
#   vecpg/citus:pg17      the same + Citus 14.0.1 from ../shared/vendor/citus
# No image registry is needed. With VECPG_PUBLIC_IMAGES=1 nothing is built: the tests use
# the public images (pgvector/pgvector:pg17, citusdata/citus) instead.
#   docker/images.sh [pgvector|citus|all]   (default all; prints the image names)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
what=${1:-all}
pgvector_image=${VECPG_PGVECTOR_IMAGE:-vecpg/pgvector:pg17}
citus_image=${VECPG_CITUS_IMAGE:-vecpg/citus:pg17}
citus_bundle=${VECPG_CITUS_BUNDLE:-$here/../../shared/vendor/citus/citus-14.0.1-pg17-debian13-amd64.tar.gz}
mirror=${VECPG_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${VECPG_PUBLIC_IMAGES:-}" = 1 ]; then
  echo "pgvector/pgvector:pg17"; echo "citusdata/citus"; exit 0
fi
# an image is rebuilt when the files baked into it changed since (its label vecpg.build)
stamp=$(cat "$here/local/entrypoint.sh" "$here/initdb.sh" "$here"/../sql/*.sql | sha256sum | cut -c1-16)
have() {
  [ "$(docker image inspect -f '{{ index .Config.Labels "vecpg.build" }}' "$1" 2>/dev/null)" = "$stamp" ]
}
changes=(--change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
         --change 'ENV PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
         --change 'ENV PGDATA=/var/lib/postgresql/data LANG=C.UTF-8'
         --change 'EXPOSE 5432'
         --change "LABEL vecpg.build=$stamp")

build_pgvector() {
  have "$pgvector_image" && return 0
  command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  root=$(mktemp -d /tmp/vecpg-rootfs.XXXXXX)
  echo "building $pgvector_image: debootstrap trixie into $root (about a minute)" >&2
  debootstrap --variant=minbase --include=postgresql-17,postgresql-17-pgvector \
      trixie "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  # the package's own cluster is not used: the entrypoint makes one in $PGDATA
  chroot "$root" sh -c 'pg_dropcluster 17 main 2>/dev/null || true; apt-get clean; rm -rf /var/lib/apt/lists/*'
  install -m 0755 "$here/local/entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  mkdir -p "$root/docker-entrypoint-initdb.d" "$root/opt/vecpg/sql"
  cp "$here"/../sql/*.sql "$root/opt/vecpg/sql/"
  install -m 0755 "$here/initdb.sh" "$root/docker-entrypoint-initdb.d/10-vecpg.sh"
  tar -C "$root" -c . | docker import "${changes[@]}" - "$pgvector_image" >/dev/null
  rm -rf "$root" "$root.log"
}

build_citus() {
  have "$citus_image" && return 0
  [ -f "$citus_bundle" ] || { echo "Citus bundle not found: $citus_bundle" >&2; exit 1; }
  build_pgvector
  echo "building $citus_image from $pgvector_image + $(basename "$citus_bundle")" >&2
  ctx=$(mktemp -d)
  cp "$citus_bundle" "$ctx/citus.tar.gz"
  cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM $pgvector_image
ADD citus.tar.gz /
CMD ["-c", "shared_preload_libraries=citus"]
DOCKERFILE
  docker build -q -t "$citus_image" "$ctx" >/dev/null
  rm -rf "$ctx"
}

case "$what" in
  pgvector) build_pgvector; echo "$pgvector_image" ;;
  citus) build_citus; echo "$citus_image" ;;
  all) build_pgvector; build_citus; echo "$pgvector_image"; echo "$citus_image" ;;
  *) echo "usage: $0 [pgvector|citus|all]" >&2; exit 2 ;;
esac
