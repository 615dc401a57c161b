"""vecpg: a vector database inside PostgreSQL, with the API of Milvus' MilvusClient.

    import vecpg
    client = vecpg.connect()            # embedded Postgres unless VECPG_DSN / a DSN is given
    client.create_collection("docs", dimension=384)
"""

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
    PartitionNotFound,
    SchemaError,
    ServerError,
    UnsupportedServer,
    ValueTooLong,
    VecpgError,
)
from .metrics import Metric
from .results import Hit
from .schema import CollectionSchema, DataType, FieldSchema

__version__ = "0.1.0"


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The client pulls in psycopg_pool, the filter parser and alembic; import it on first use
    # so `import vecpg.datasets` stays light.
    if name in ("Client", "IndexParams", "connect"):
        from . import client

        return getattr(client, name)
    raise AttributeError(name)

__all__ = [
    "AlreadyExists", "Client", "CollectionNotFound", "CollectionSchema", "DataType",
    "DimensionMismatch", "DuplicateKey", "FieldSchema", "FieldTypeError", "FilterError", "Hit",
    "IndexNotFound", "IndexNotReady", "IndexParams", "InvalidArgument", "InvalidName", "InvalidVector", "Metric",
    "MetricMismatch", "NotFound", "PartitionNotFound", "SchemaError", "ServerError",
    "UnsupportedServer", "ValueTooLong", "VecpgError", "connect",
]
