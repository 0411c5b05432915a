"""Arrow schemas of node outputs: the input's schema plus the columns a node adds.

pyarrow is imported inside the functions: a no-op rebuild (every node a memo hit) never
builds a schema, and should not pay for importing pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fdbuild import columns as C

if TYPE_CHECKING:
    import pyarrow as pa


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a check's or parser's declared output type name."""
    import pyarrow as pa

    types = {"string": pa.string(), "bool": pa.bool_(), "double": pa.float64(), "int64": pa.int64()}
    return types[name]


def logprobs_type() -> pa.DataType:
    """Per-token logprobs: list<struct<token, logprob, top_logprobs: list<struct<token, logprob>>>>."""
    import pyarrow as pa

    top = pa.struct([("token", pa.string()), ("logprob", pa.float64())])
    return pa.list_(
        pa.struct(
            [("token", pa.string()), ("logprob", pa.float64()), ("top_logprobs", pa.list_(top))]
        )
    )


def extend_schema(base: pa.Schema, added: dict[str, pa.DataType]) -> pa.Schema:
    """``base`` with ``added`` columns replacing or appending (order: base first)."""
    import pyarrow as pa

    fields = [f for f in base if f.name not in added or f.name == C.ID]
    names = {f.name for f in fields}
    fields += [pa.field(n, t) for n, t in added.items() if n not in names]
    return pa.schema(fields)
