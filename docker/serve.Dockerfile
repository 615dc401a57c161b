# `vecpg serve`: Milvus' gRPC protocol (port 19530) over a Postgres with pgvector at $VECPG_DSN.
# Build from the repository root (the compose files do):
#   docker build -f docker/serve.Dockerfile -t vecpg/serve:local .
# BASE is any Debian image with apt: the local vecpg/pgvector:pg17 (docker/images.sh; no
# registry needed) or, with registry access, e.g. --build-arg BASE=debian:trixie-slim.
ARG BASE=vecpg/pgvector:pg17

FROM ${BASE} AS build
# PEM certificates to trust besides Debian's, for a network whose HTTPS proxy re-signs PyPI
# (--build-arg EXTRA_CA_CERTS="$(cat proxy-ca.crt)"); only this build stage sees them
ARG EXTRA_CA_CERTS=""
# g++ and the Python headers: annoy (the ANNOY companion index) builds from source
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev g++ ca-certificates \
    && if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/extra.crt \
        && update-ca-certificates; fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
COPY pyproject.toml README.md /src/
COPY vecpg /src/vecpg
COPY sql /src/sql
COPY migrations /src/migrations
RUN python3 -m venv /opt/vecpg && /opt/vecpg/bin/pip install --no-cache-dir '/src[server]'

FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 libstdc++6 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/vecpg /opt/vecpg
ENV PATH=/opt/vecpg/bin:$PATH
USER nobody
EXPOSE 19530
# VECPG_DSN says which Postgres; without it vecpg would start an embedded one in the container
ENTRYPOINT ["vecpg"]
CMD ["serve", "--host", "0.0.0.0"]
