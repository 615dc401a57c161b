"""vecpg: a vector database inside PostgreSQL, with the API of Milvus' MilvusClient.

    import vecpg
    client = vecpg.connect()            # embedded Postgres unless VECPG_DSN / a DSN is given
    client.create_collection("docs", dimension=384)
"""

from typing import TYPE_CHECKING

from .errors import (
    AlreadyExists,
    CollectionNotFound,
    DimensionMismatch,
    DuplicateKey,
    FieldTypeError,
    FilterError,
    IndexNotFound,
    IndexNotReady,
    InvalidArgument,
    InvalidName,
    InvalidVector,
    MetricMismatch,
    NotFound,
    NotSupported,
    PartitionNotFound,
    PermissionDenied,
    PoolTimeout,
    SchemaError,
    ServerError,
    ServerUnavailable,
    UnsupportedServer,
    ValueTooLong,
    VecpgError,
)
from .fusion import AnnSearchRequest, RRFRanker, WeightedRanker
from .metrics import Metric
from .results import Hit
from .schema import CollectionSchema, DataType, FieldSchema, Function, FunctionType

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the real signatures; at run time they load lazily
    from .client import Client, IndexParams, MilvusClient, connect
    from .replicas import ReplicaPolicy


def __getattr__(name: str) -> object:
    # The client pulls in the filter parser, numpy and alembic; import it on first use
    # so `import vecpg.datasets` stays light.
    if name in ("Client", "IndexParams", "MilvusClient", "connect"):
        from . import client

        return getattr(client, name)
    if name == "ReplicaPolicy":
        from .replicas import ReplicaPolicy

        return ReplicaPolicy
    raise AttributeError(f"module 'vecpg' has no attribute {name!r}")

__all__ = [
    "AlreadyExists", "AnnSearchRequest", "Client", "CollectionNotFound", "CollectionSchema",
    "DataType", "DimensionMismatch", "DuplicateKey", "FieldSchema", "FieldTypeError",
    "FilterError", "Function", "FunctionType",
    "Hit", "IndexNotFound", "IndexNotReady", "IndexParams", "InvalidArgument",
    "InvalidName", "InvalidVector", "Metric", "MetricMismatch", "MilvusClient", "NotFound",
    "NotSupported", "PartitionNotFound", "PermissionDenied", "PoolTimeout", "RRFRanker",
    "ReplicaPolicy", "SchemaError", "ServerError", "ServerUnavailable", "UnsupportedServer",
    "ValueTooLong", "VecpgError", "WeightedRanker", "connect",
]
