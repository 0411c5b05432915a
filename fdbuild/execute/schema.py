"""Arrow schemas of node outputs: the input's schema plus the columns a node adds."""

from __future__ import annotations

import pyarrow as pa

from fdbuild import columns as C

TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "double": pa.float64(),
    "int64": pa.int64(),
}

_TOP = pa.struct([("token", pa.string()), ("logprob", pa.float64())])
LOGPROBS_TYPE = pa.list_(
    pa.struct([("token", pa.string()), ("logprob", pa.float64()), ("top_logprobs", pa.list_(_TOP))])
)


def arrow_type(name: str) -> pa.DataType:
    return TYPES[name]


def extend_schema(base: pa.Schema, added: dict[str, pa.DataType]) -> pa.Schema:
    """``base`` with ``added`` columns replacing or appending (order: base first)."""
    fields = [f for f in base if f.name not in added or f.name == C.ID]
    names = {f.name for f in fields}
    fields += [pa.field(n, t) for n, t in added.items() if n not in names]
    return pa.schema(fields)


def project(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    return pa.schema([schema.field(c) for c in columns])
