"""The ``vecpg`` command: a thin layer over the library.

    vecpg demo            # load the packaged WordNet sample, build HNSW, search, measure recall
    vecpg info            # server, versions, collections
    vecpg bench FILE.hdf5 # recall/QPS benchmark, with the raw pgvector SQL side by side
    vecpg serve           # Milvus' gRPC protocol on 127.0.0.1:19530 (pymilvus connects as is)
    vecpg server start    # keep the embedded Postgres running (also: stop, status)
    vecpg dsn             # its connection string, for psql and any libpq program
    vecpg psql [ARGS]     # the psql that ships with it, connected (ARGS go to psql)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any


def _client(args: argparse.Namespace) -> Any:
    from .client import connect

    return connect(args.dsn, data_dir=args.data_dir, schema=args.schema)


def cmd_demo(args: argparse.Namespace) -> int:
    """``vecpg demo``: exit status 0 when every measured recall reaches 0.95, else 1, so the
    demo doubles as a smoke test of a server."""
    from .demo import run_demo

    with _client(args) as client:
        info = client.server_info()
        print(f"Postgres {info['postgres']}, pgvector {info['pgvector']} ({info['dsn']})")
        recalls = run_demo(client, ef=args.ef)
    worst = min(recalls.values())
    return 0 if worst >= 0.95 else 1


def cmd_info(args: argparse.Namespace) -> int:
    """``vecpg info``: the server, versions and every collection of the schema, as JSON."""
    from . import __version__

    with _client(args) as client:
        info = client.server_info()
        info["vecpg"] = __version__
        cols = {}
        for name in client.list_collections():
            d = client.describe_collection(name)
            cols[name] = {"rows": client.count(name), "metrics": d["metrics"],
                          "indexes": {ix: client.describe_index(name, ix)["index_type"]
                                      for ix in d["indexes"]}}
        info["collections"] = cols
    print(json.dumps(info, indent=2, default=str))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``vecpg serve``: Milvus' gRPC protocol until SIGTERM/SIGINT (graceful stop)."""
    import logging

    from .wire import serve

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = serve(args.host, args.port, dsn=args.dsn, data_dir=args.data_dir,
                   workers=args.workers, max_clients=args.max_clients,
                   tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca,
                   rest_port=args.rest_port, handle_signals=True)
    tls = " (TLS)" if args.tls_cert else ""
    rest = f", REST v2 on {args.host}:{server.rest_port}" if server.rest_port else ""
    print(f"vecpg serve: Milvus gRPC{tls} on {args.host}:{server.port}{rest}", flush=True)
    server.wait_for_termination()
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    """``vecpg server start|stop|status``: the embedded server of ``--data-dir`` (or
    ``$VECPG_DATA``) kept running between commands. ``status`` exits 3 when it is not
    running (as ``pg_ctl status`` does)."""
    from . import server

    where = args.data_dir
    if args.action == "start":
        before = server.server_status(where)
        st = server.start_server(where)
        said = "was already running" if before.running and before.persistent else "running"
        print(f"vecpg server: Postgres {st.pg_version} {said} in {st.data_dir} (pid {st.pid}); "
              "it stays up until `vecpg server stop`")
        print(f"DSN: {st.dsn}")
        print("SQL: vecpg psql   Python: vecpg.connect() uses it"
              + ("" if args.data_dir is None else f" (with VECPG_DATA={st.data_dir})"))
        return 0
    if args.action == "stop":
        st = server.stop_server(where)
        if not st.running:
            print(f"vecpg server: not running in {st.data_dir}")
            return 0
        print(f"vecpg server: stopped Postgres in {st.data_dir}; {st.clients or 0} client "
              "connection(s) were closed (open transactions rolled back)")
        return 0
    st = server.server_status(where)
    if not st.running:
        print(f"stopped: no Postgres runs in {st.data_dir}")
        return 3
    kind = ("started by `vecpg server start`" if st.persistent else
            f"embedded in process(es) {', '.join(map(str, st.users)) or '(none)'}, "
            "stops when they exit")
    print(f"running: Postgres {st.pg_version} in {st.data_dir} (pid {st.pid}), {kind}")
    print(f"DSN: {st.dsn}")
    print(f"clients: {st.clients if st.clients is not None else '?'} connection(s)")
    print(f"log: {st.data_dir / 'log'}")
    return 0


def _server_dsn(args: argparse.Namespace) -> tuple[str, int | None]:
    """The DSN clients would use without starting anything (``--dsn``, ``$VECPG_DSN``, the
    running server of the data directory) and its major version if embedded."""
    from .errors import ServerUnavailable
    from .server import server_status

    env = os.environ.get("VECPG_DSN")
    if args.dsn or (env and args.data_dir is None):
        return str(args.dsn or env), None
    st = server_status(args.data_dir)
    if not st.running or st.dsn is None:
        raise ServerUnavailable(f"no Postgres runs in {st.data_dir}: start one with "
                                "`vecpg server start`")
    return st.dsn, st.pg_version


def cmd_dsn(args: argparse.Namespace) -> int:
    """``vecpg dsn``: the connection string of the server clients use (no password hidden:
    the embedded server has none; its socket is open to your user only)."""
    print(_server_dsn(args)[0])
    return 0


def cmd_psql(args: argparse.Namespace) -> int:
    """``vecpg psql [ARGS]``: exec the psql bundled with the embedded server on the DSN
    ``vecpg dsn`` prints; ARGS go to psql as they are (``vecpg psql -c 'SELECT 1'``)."""
    from .server import psql_path

    dsn, version = _server_dsn(args)
    psql = str(psql_path(version))
    sys.stdout.flush()
    os.execv(psql, [psql, "--dbname", dsn, *args.psql_args])
    return 1  # not reached: execv replaces this process or raises OSError


def main(argv: list[str] | None = None) -> int:
    """The console entry point; returns the exit status (2 for a vecpg error, which is
    printed as one line instead of a traceback)::

        main(["--schema", "demo", "info"])
    """
    from . import __version__

    # the module docstring without its reST markup
    text = re.sub(r"``([^`]*)``", r"\1", __doc__ or "")
    p = argparse.ArgumentParser(prog="vecpg", description=re.sub(r":\w+:`\.?([^`]*)`",
                                                                 r"\1", text),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"vecpg {__version__}")
    p.add_argument("--dsn", help="Postgres connection string (default: $VECPG_DSN, else the "
                                 "embedded server)")
    p.add_argument("--data-dir", help="data directory of the embedded server ($VECPG_DATA)")
    p.add_argument("--schema", default="public", help="Postgres schema of the collections")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="semantic search over a WordNet sample, with recall")
    d.add_argument("--ef", type=int, default=64, help="HNSW ef at search time")
    d.set_defaults(func=cmd_demo)
    i = sub.add_parser("info", help="server, versions and collections")
    i.set_defaults(func=cmd_info)
    s = sub.add_parser("serve", help="speak Milvus' gRPC protocol (pymilvus, other SDKs)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=19530, help="port (Milvus' default 19530)")
    s.add_argument("--workers", type=int, default=16, help="request threads")
    s.add_argument("--max-clients", type=int, default=32,
                   help="(role, database) clients kept open, each a connection pool")
    s.add_argument("--tls-cert", help="PEM certificate: serve TLS only (with --tls-key)")
    s.add_argument("--tls-key", help="PEM private key of --tls-cert")
    s.add_argument("--tls-ca", help="PEM CA: require client certificates it signed")
    s.add_argument("--rest-port", type=int, help="also serve Milvus' REST API v2 on this port "
                   "(gRPC cannot share its port with HTTP/1.1)")
    s.add_argument("-v", "--verbose", action="store_true", help="log every request")
    s.set_defaults(func=cmd_serve)
    v = sub.add_parser("server", help="keep the embedded Postgres running: start, stop, status")
    v.add_argument("action", choices=("start", "stop", "status"))
    v.set_defaults(func=cmd_server)
    n = sub.add_parser("dsn", help="print the DSN of the running server (for psql, libpq)")
    n.set_defaults(func=cmd_dsn)
    q = sub.add_parser("psql", add_help=False, help="the bundled psql on that DSN; the "
                                                    "arguments that follow go to psql")
    q.set_defaults(func=cmd_psql)
    from .bench import add_parser as add_bench_parser

    add_bench_parser(sub)  # vecpg bench: see vecpg/bench/__init__.py
    # psql takes its own options (-c, -f, -v ...): whatever follows `psql` is passed on
    args, extra = p.parse_known_args(argv)
    if args.command == "psql":
        args.psql_args = extra
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    from .errors import VecpgError

    try:
        return int(args.func(args))
    except VecpgError as e:
        print(f"vecpg: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (``vecpg info | head``): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # a file that is missing or not what it should be (vecpg bench)
        print(f"vecpg: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
