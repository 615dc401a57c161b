"""Start and stop ``vecpg serve``: a grpcio server with :class:`MilvusService`.

    server = serve("127.0.0.1", 19530, dsn="postgresql://me@db/app")
    ...                                   # pymilvus.MilvusClient("http://127.0.0.1:19530")
    server.stop(grace=5)

With ``tls_cert`` and ``tls_key`` (PEM files) it serves TLS only, as Milvus does with
``tlsMode`` 1: pymilvus connects with ``MilvusClient(uri="https://host:19530",
server_pem_path="cert.pem")`` (``server_name=`` when the certificate names another host).
``tls_ca`` too asks every client for a certificate signed by that CA (Milvus' ``tlsMode``
2; pymilvus' ``client_pem_path``, ``client_key_path`` and ``ca_pem_path``).

With ``rest_port``, Milvus' RESTful API v2 too, on that port (see :mod:`vecpg.wire.rest`;
plain HTTP, also with TLS on the gRPC port).
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from ..errors import InvalidArgument, NotFound
from .service import MilvusService

_log = logging.getLogger("vecpg.wire")
# pymilvus sends messages up to its own limit (2 GiB - 1): accept the same
_MAX_MESSAGE = 2**31 - 1


def serve(host: str = "127.0.0.1", port: int = 19530, dsn: str | None = None,
          data_dir: str | None = None, workers: int = 16, *, max_clients: int = 32,
          tls_cert: str | None = None, tls_key: str | None = None, tls_ca: str | None = None,
          rest_port: int | None = None, handle_signals: bool = False) -> Any:
    """Start a gRPC server speaking Milvus' protocol on ``host:port`` (``port=0``: a free
    port, read back from ``server.port``), translating onto Postgres at ``dsn`` (default
    ``$VECPG_DSN``, else the embedded server in ``data_dir``); returns the started
    ``grpc.Server``. ``max_clients``: the (role, database) clients kept open, each with a
    pool of up to ``max(workers, 4)`` connections (see :class:`~vecpg.wire.service.
    ClientCache`). ``tls_cert`` / ``tls_key`` / ``tls_ca``: TLS (see the module doc).
    ``rest_port``: serve the REST API there too (0: a free port, ``server.rest_port``).
    With ``handle_signals``, SIGTERM and SIGINT stop it gracefully (in-flight requests get
    5 seconds); call from the main thread then."""
    if workers < 1:
        raise InvalidArgument(f"workers must be at least 1, got {workers}")
    credentials = _tls(tls_cert, tls_key, tls_ca)
    service = MilvusService(dsn, data_dir=data_dir, pool_size=max(workers, 4),
                            max_clients=max_clients)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                    thread_name_prefix="vecpg-serve"),
                         options=[("grpc.max_send_message_length", _MAX_MESSAGE),
                                  ("grpc.max_receive_message_length", _MAX_MESSAGE),
                                  # pymilvus pings every 10 s, idle or not (as Milvus
                                  # allows): without these grpc answers "too_many_pings"
                                  ("grpc.keepalive_permit_without_calls", 1),
                                  ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
                                  ("grpc.http2.max_ping_strikes", 0)])
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(service, server)
    address = f"{host}:{port}"
    bound = server.add_insecure_port(address) if credentials is None else \
        server.add_secure_port(address, credentials)
    if bound == 0:
        service.close()
        raise InvalidArgument(f"cannot listen on {host}:{port}")
    server.port = bound
    server.service = service
    rest = None
    if rest_port is not None:
        from .rest import serve_rest

        try:
            rest = serve_rest(service, host, rest_port)
        except BaseException:
            service.close()
            raise
    server.rest = rest
    server.rest_port = rest.server_address[1] if rest is not None else None
    server.start()
    stop = server.stop

    def stop_and_close(grace: float | None = None) -> Any:
        if rest is not None:
            rest.shutdown()  # waits for its loop; requests in flight run on their threads
            rest.server_close()
        event = stop(grace)

        def close_when_stopped() -> None:
            event.wait()
            service.close()
        threading.Thread(target=close_when_stopped, daemon=True).start()
        return event

    server.stop = stop_and_close
    if handle_signals:
        def on_signal(signum: int, frame: Any) -> None:
            _log.info("signal %s: stopping (grace 5 s)", signum)
            stop_and_close(5.0)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    _log.info("vecpg serve: Milvus gRPC%s on %s:%s -> %s", "" if credentials is None else
              " (TLS)", host, bound, service.dsn_redacted)
    return server


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise NotFound(f"cannot read the {what} {path!r}: {e.strerror}") from e


def _tls(cert: str | None, key: str | None, ca: str | None) -> Any:
    """Server credentials from PEM files (None: plain TCP)."""
    if cert is None and key is None and ca is None:
        return None
    if cert is None or key is None:
        raise InvalidArgument("TLS needs both tls_cert and tls_key")
    pair = (_read(key, "TLS key"), _read(cert, "TLS certificate"))
    if b"PRIVATE KEY" not in pair[0] or b"CERTIFICATE" not in pair[1]:
        raise InvalidArgument("tls_key and tls_cert must be PEM files (a private key, a "
                              "certificate)")
    if ca is None:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials([pair], root_certificates=_read(ca, "TLS CA"),
                                       require_client_auth=True)
