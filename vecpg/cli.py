"""The ``vecpg`` command: a thin layer over the library.

    vecpg demo            # load the packaged WordNet sample, build HNSW, search, measure recall
    vecpg info            # server, versions, collections
    vecpg bench FILE.hdf5 # recall/QPS benchmark, with the raw pgvector SQL side by side
    vecpg serve           # Milvus' gRPC protocol on 127.0.0.1:19530 (pymilvus connects as is)
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
                   workers=args.workers, handle_signals=True)
    print(f"vecpg serve: Milvus gRPC on {args.host}:{server.port}", flush=True)
    server.wait_for_termination()
    return 0


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
    s.add_argument("-v", "--verbose", action="store_true", help="log every request")
    s.set_defaults(func=cmd_serve)
    from .bench import add_parser as add_bench_parser

    add_bench_parser(sub)  # vecpg bench: see vecpg/bench/__init__.py
    args = p.parse_args(argv)
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
