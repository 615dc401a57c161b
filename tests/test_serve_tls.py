"""``vecpg serve`` over TLS: certificates made here with the ``openssl`` command (a CA, a
server certificate for 127.0.0.1 and a client certificate it signed), and an unmodified
pymilvus connecting with ``https://`` and ``server_pem_path`` (one-way TLS) or with its
client certificate too (mutual TLS, ``tls_ca``)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("grpc")
pymilvus = pytest.importorskip("pymilvus")

from vecpg.errors import InvalidArgument, NotFound  # noqa: E402
from vecpg.wire import serve  # noqa: E402

MilvusException = pymilvus.MilvusException


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, server.pem/server.key (for 127.0.0.1 and localhost), client.pem/client.key."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=vecpg test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=vecpg {who}",
                 "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{who}.pem",
                 cwd=d)
    return d


def _roundtrip(c: Any) -> None:
    name = "tls_" + uuid.uuid4().hex[:8]
    c.create_collection(name, dimension=2)
    try:
        c.insert(name, [{"id": 1, "vector": [1.0, 0.0]}, {"id": 2, "vector": [0.0, 1.0]}])
        assert [h["id"] for h in c.search(name, [[0.9, 0.1]], limit=2)[0]] == [1, 2]
    finally:
        c.drop_collection(name)


def test_tls(dsn: str, pki: Path) -> None:
    srv = serve("127.0.0.1", 0, dsn=dsn, workers=2, tls_cert=str(pki / "server.pem"),
                tls_key=str(pki / "server.key"))
    try:
        uri = f"https://127.0.0.1:{srv.port}"
        # first (pymilvus reuses a connection made to the same address): plain TCP to a
        # TLS port, or a CA that did not sign the certificate, connects to nothing
        with pytest.raises(MilvusException):
            pymilvus.MilvusClient(uri=f"http://127.0.0.1:{srv.port}", timeout=3)
        with pytest.raises(MilvusException):
            pymilvus.MilvusClient(uri=uri, server_pem_path=str(pki / "client.pem"), timeout=3)
        c = pymilvus.MilvusClient(uri=uri, server_pem_path=str(pki / "ca.pem"))
        try:
            _roundtrip(c)
        finally:
            c.close()
        # secure=True with a host name the certificate names
        c = pymilvus.MilvusClient(uri=f"http://localhost:{srv.port}", secure=True,
                                  server_pem_path=str(pki / "ca.pem"), server_name="localhost")
        try:
            assert isinstance(c.list_collections(), list)
        finally:
            c.close()
    finally:
        srv.stop(None)


def test_mutual_tls(dsn: str, pki: Path) -> None:
    srv = serve("127.0.0.1", 0, dsn=dsn, workers=2, tls_cert=str(pki / "server.pem"),
                tls_key=str(pki / "server.key"), tls_ca=str(pki / "ca.pem"))
    try:
        uri = f"https://127.0.0.1:{srv.port}"
        with pytest.raises(MilvusException):  # no client certificate: refused
            pymilvus.MilvusClient(uri=uri, server_pem_path=str(pki / "ca.pem"), timeout=3)
        c = pymilvus.MilvusClient(uri=uri, ca_pem_path=str(pki / "ca.pem"),
                                  client_pem_path=str(pki / "client.pem"),
                                  client_key_path=str(pki / "client.key"))
        try:
            _roundtrip(c)
        finally:
            c.close()
    finally:
        srv.stop(None)


def test_tls_arguments(dsn: str, pki: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        serve("127.0.0.1", 0, dsn=dsn, tls_cert=str(pki / "server.pem"))
    with pytest.raises(NotFound):
        serve("127.0.0.1", 0, dsn=dsn, tls_cert=str(tmp_path / "none.pem"),
              tls_key=str(pki / "server.key"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(InvalidArgument):
        serve("127.0.0.1", 0, dsn=dsn, tls_cert=str(tmp_path / "junk.pem"),
              tls_key=str(pki / "server.key"))
