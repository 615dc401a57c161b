"""A stand-in for the Java, Go and Node SDKs, which cannot run here (no JVM, Go toolchain
or Node on this machine, and no registry to fetch them from): those SDKs are generated
from the same ``milvus.proto`` as pymilvus' ``grpc_gen`` modules, so what they send is
these messages. So every request and response ``vecpg serve`` handles is built from the
generated classes alone (no pymilvus client code), serialized with ``SerializeToString``,
parsed back and compared, and sent through a raw grpc channel.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

grpc = pytest.importorskip("grpc")
pytest.importorskip("pymilvus")

from google.protobuf import message_factory  # noqa: E402
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2  # noqa: E402

import vecpg  # noqa: E402
from vecpg.wire import serve  # noqa: E402
from vecpg.wire.service import implemented_rpcs, not_supported_rpcs  # noqa: E402

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


@pytest.fixture(scope="module")
def channel(dsn: str) -> Iterator[Any]:
    srv = serve("127.0.0.1", 0, dsn=dsn, workers=4)
    ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    yield ch
    ch.close()
    srv.stop(None)


def _classes(rpc: str) -> tuple[Any, Any]:
    m = SERVICE.methods_by_name[rpc]
    return (message_factory.GetMessageClass(m.input_type),
            message_factory.GetMessageClass(m.output_type))


def _same_after_wire(msg: Any) -> Any:
    """``msg`` serialized and parsed back into a new message of its class: equal."""
    back = type(msg).FromString(msg.SerializeToString())
    assert back == msg and back.SerializeToString() == msg.SerializeToString()
    return back


def call(channel: Any, rpc: str, request: Any) -> Any:
    """One raw unary call, request and response each checked to round-trip."""
    req_cls, resp_cls = _classes(rpc)
    assert isinstance(request, req_cls)
    stub = channel.unary_unary(f"/{SERVICE.full_name}/{rpc}",
                               request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)
    return _same_after_wire(stub(_same_after_wire(request), timeout=30))


def _status(resp: Any) -> Any:
    return resp if isinstance(resp, common_pb2.Status) else resp.status


def test_every_implemented_rpc_answers(channel: Any) -> None:
    """An empty request to each translated RPC gets its response message back (an error
    status for the ones that need names), never a gRPC error; those of methods vecpg does
    not support, status 10 naming the method; the rest UNIMPLEMENTED (AlterCollectionSchema
    too: pymilvus' add_collection_field then falls back to AddCollectionField)."""
    done = implemented_rpcs()
    assert len(done) >= 70 and {"Search", "HybridSearch", "Query", "Insert"} <= set(done)
    for rpc in done:
        resp = call(channel, rpc, _classes(rpc)[0]())
        st = _status(resp)
        assert st.code != 0 or st.error_code == 0, rpc
        if st.code:  # an error names what was wrong, as Milvus' statuses do
            assert st.reason, rpc
    refused = not_supported_rpcs()
    assert {"ListResourceGroups", "AlterIndex", "RunAnalyzer"} <= set(refused)
    for rpc, method in refused.items():  # vecpg's NotSupported as a status, naming the method
        st = _status(call(channel, rpc, _classes(rpc)[0]()))
        assert st.code == 10 and method in st.reason, rpc
    for rpc in ("LoadBalance", "Import", "GetMetrics", "AlterCollectionSchema"):
        assert rpc not in done and rpc not in refused
        with pytest.raises(grpc.RpcError) as e:
            call(channel, rpc, _classes(rpc)[0]())
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED and rpc in e.value.details()


def _schema(name: str) -> bytes:
    s = schema_pb2.CollectionSchema(name=name, enable_dynamic_field=True)
    s.fields.add(name="pk", data_type=schema_pb2.Int64, is_primary_key=True)
    s.fields.add(name="title", data_type=schema_pb2.VarChar,
                 type_params=[common_pb2.KeyValuePair(key="max_length", value="32")])
    s.fields.add(name="vec", data_type=schema_pb2.FloatVector,
                 type_params=[common_pb2.KeyValuePair(key="dim", value="3")])
    return _same_after_wire(s).SerializeToString()


def _placeholders(vectors: list[list[float]]) -> bytes:
    g = common_pb2.PlaceholderGroup()
    g.placeholders.add(tag="$0", type=common_pb2.FloatVector,
                       values=[struct.pack("<3f", *v) for v in vectors])
    return _same_after_wire(g).SerializeToString()


def _kv(**params: Any) -> list[Any]:
    return [common_pb2.KeyValuePair(key=k, value=v if isinstance(v, str) else json.dumps(v))
            for k, v in params.items()]


def test_a_raw_flow(channel: Any, dsn: str) -> None:
    """create, insert, index, search (plain, filtered with a template, hybrid), query,
    upsert, delete and drop, every message built by hand; the answers checked against an
    in-process client."""
    name = "stub_" + uuid.uuid4().hex[:8]
    ok = common_pb2.Success
    assert _status(call(channel, "CreateCollection", milvus_pb2.CreateCollectionRequest(
        collection_name=name, schema=_schema(name), shards_num=1))).error_code == ok
    try:
        d = call(channel, "DescribeCollection",
                 milvus_pb2.DescribeCollectionRequest(collection_name=name))
        assert [(f.name, f.data_type) for f in d.schema.fields] == [
            ("pk", schema_pb2.Int64), ("title", schema_pb2.VarChar),
            ("vec", schema_pb2.FloatVector)]
        rng = np.random.default_rng(8)
        vecs = rng.random((6, 3)).astype(np.float32)
        ins = milvus_pb2.InsertRequest(collection_name=name, num_rows=6)
        ins.fields_data.add(field_name="pk", type=schema_pb2.Int64).scalars.long_data.data.extend(
            range(6))
        ins.fields_data.add(field_name="title", type=schema_pb2.VarChar).scalars.string_data \
            .data.extend(f"t{i}" for i in range(6))
        fv = ins.fields_data.add(field_name="vec", type=schema_pb2.FloatVector)
        fv.vectors.dim = 3
        fv.vectors.float_vector.data.extend(vecs.reshape(-1).tolist())
        meta = ins.fields_data.add(field_name="$meta", type=schema_pb2.JSON, is_dynamic=True)
        meta.scalars.json_data.data.extend(json.dumps({"n": i}).encode() for i in range(6))
        r = call(channel, "Insert", ins)
        assert r.insert_cnt == 6 and list(r.IDs.int_id.data) == list(range(6))
        assert _status(call(channel, "CreateIndex", milvus_pb2.CreateIndexRequest(
            collection_name=name, field_name="vec", index_name="vec",
            extra_params=_kv(index_type="HNSW", metric_type="L2",
                             params={"M": 8, "efConstruction": 32})))).error_code == ok
        # what older SDKs and tools poll (Java's and Go's index waits, health probes)
        st = call(channel, "GetIndexState", milvus_pb2.GetIndexStateRequest(
            collection_name=name, field_name="vec"))
        assert st.state == common_pb2.Finished
        pr = call(channel, "GetIndexBuildProgress", milvus_pb2.GetIndexBuildProgressRequest(
            collection_name=name, index_name="vec"))
        assert pr.total_rows == 6 and pr.indexed_rows == 6
        stats = call(channel, "GetIndexStatistics", milvus_pb2.GetIndexStatisticsRequest(
            collection_name=name))
        assert [d.index_name for d in stats.index_descriptions] == ["vec"]
        health = call(channel, "GetComponentStates", milvus_pb2.GetComponentStatesRequest())
        assert health.state.state_code == common_pb2.Healthy
        assert call(channel, "FlushAll", milvus_pb2.FlushAllRequest()).flush_all_ts > 0
        q = (vecs[:2] + 0.01).tolist()
        with vecpg.connect(dsn) as local:
            for expr, templates in (("", {}), ("n >= {m}", {"m": 2})):
                req = milvus_pb2.SearchRequest(
                    collection_name=name, dsl=expr, dsl_type=common_pb2.BoolExprV1,
                    placeholder_group=_placeholders(q), output_fields=["title", "n"],
                    search_params=_kv(anns_field="vec", topk=3, metric_type="L2",
                                      params={"ef": 32}, round_decimal=-1), nq=2)
                for k, v in templates.items():
                    req.expr_template_values[k].int64_val = v
                res = call(channel, "Search", req).results
                mine = local.search(name, q, limit=3, filter=expr, filter_params=templates,
                                    output_fields=["title", "n"])
                assert list(res.topks) == [3, 3]
                assert list(res.ids.int_id.data) == [h.id for hits in mine for h in hits]
                np.testing.assert_allclose(list(res.scores),
                                           [h.distance for hits in mine for h in hits],
                                           rtol=1e-5)
                cols = {f.field_name: f for f in res.fields_data}
                assert list(cols["title"].scalars.string_data.data) == [
                    h.entity["title"] for hits in mine for h in hits]
                assert [json.loads(x)["n"] for x in cols["$meta"].scalars.json_data.data] == [
                    h.entity["n"] for hits in mine for h in hits]
            hy = milvus_pb2.HybridSearchRequest(collection_name=name, output_fields=["title"],
                                                rank_params=_kv(strategy="rrf",
                                                                params={"k": 60}, limit=3))
            for expr in ("", "pk > 1"):
                hy.requests.add(collection_name=name, dsl=expr, nq=2,
                                dsl_type=common_pb2.BoolExprV1,
                                placeholder_group=_placeholders(q),
                                search_params=_kv(anns_field="vec", topk=4, metric_type="L2"))
            res = call(channel, "HybridSearch", hy).results
            want = local.hybrid_search(
                name, [vecpg.AnnSearchRequest(q, "vec", {"metric_type": "L2"}, 4),
                       vecpg.AnnSearchRequest(q, "vec", {"metric_type": "L2"}, 4,
                                              expr="pk > 1")],
                vecpg.RRFRanker(60), limit=3)
            assert list(res.ids.int_id.data) == [h.id for hits in want for h in hits]
        qr = call(channel, "Query", milvus_pb2.QueryRequest(
            collection_name=name, expr="pk in [1, 4]", output_fields=["title", "vec"]))
        cols = {f.field_name: f for f in qr.fields_data}
        assert list(cols["pk"].scalars.long_data.data) == [1, 4]
        assert list(cols["title"].scalars.string_data.data) == ["t1", "t4"]
        np.testing.assert_allclose(np.asarray(cols["vec"].vectors.float_vector.data).reshape(
            -1, 3), vecs[[1, 4]], rtol=1e-6)
        up = milvus_pb2.UpsertRequest(collection_name=name, num_rows=1)
        up.fields_data.add(field_name="pk", type=schema_pb2.Int64).scalars.long_data.data.append(
            1)
        up.fields_data.add(field_name="title", type=schema_pb2.VarChar).scalars.string_data \
            .data.append("new")
        fv = up.fields_data.add(field_name="vec", type=schema_pb2.FloatVector)
        fv.vectors.dim = 3
        fv.vectors.float_vector.data.extend([0.0, 0.0, 0.0])
        assert call(channel, "Upsert", up).upsert_cnt == 1
        dl = milvus_pb2.DeleteRequest(collection_name=name, expr="pk >= {m}")
        dl.expr_template_values["m"].int64_val = 4
        assert call(channel, "Delete", dl).delete_cnt == 2
        qr = call(channel, "Query", milvus_pb2.QueryRequest(
            collection_name=name, expr="", output_fields=["count(*)"]))
        assert list(qr.fields_data[0].scalars.long_data.data) == [4]
        qr = call(channel, "Query", milvus_pb2.QueryRequest(
            collection_name=name, expr="pk == 1", output_fields=["title"]))
        assert list({f.field_name: f for f in qr.fields_data}["title"].scalars.string_data
                    .data) == ["new"]
    finally:
        call(channel, "DropCollection", milvus_pb2.DropCollectionRequest(collection_name=name))
    r = call(channel, "HasCollection", milvus_pb2.HasCollectionRequest(collection_name=name))
    assert r.value is False
