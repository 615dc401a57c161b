"""``vecpg serve``: Milvus' gRPC protocol on Postgres, so unmodified Milvus SDKs (pymilvus'
``MilvusClient(uri="http://127.0.0.1:19530")``) run on vecpg.

Needs ``grpcio`` and ``pymilvus`` (its generated stubs are the protocol)::

    from vecpg.wire import serve
    server = serve("127.0.0.1", 19530, dsn="postgresql://me@db/app")
    server.wait_for_termination()
"""

from __future__ import annotations

from .server import serve
from .service import MilvusService

__all__ = ["MilvusService", "serve"]
