"""A source value that is not valid Unicode is an exit-2 error naming file, line (row
index for Parquet) and column, never a traceback; valid text (surrogate pairs, NUL) reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fdbuild.errors import SpecError
from fdbuild.sources import peek_columns, read_source
from tests.support.project import ProjectDir


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_error(path: Path, fmt: str) -> str:
    with pytest.raises(SpecError) as info:
        read_source(path, fmt)
    return info.value.message


@pytest.mark.parametrize(
    "data, line, where",
    [
        (b'{"q": "a"}\n{"q": "b\xff"}\n', 2, "column 'q': not valid UTF-8 (byte 0xff"),
        (b'{"q": "a"}\n\n{"q": "\\ud800"}\n', 3, "column 'q': a JSON escape of a lone surrogate"),
        (b'{"q": "\\udc00\\ud800"}\n', 1, "column 'q': a JSON escape of a lone surrogate"),
        (
            b'{"q": "a", "meta": {"tags": ["x", "\\uDFFF"]}}\n',
            1,
            "column 'meta' (at meta.tags[1]): a JSON escape",
        ),
        (b'{"q": "a"}\n{"\\ud800": 1}\n', 2, "column '<a key>'"),
    ],
    ids=["byte", "high-surrogate", "reversed-pair", "nested", "key"],
)
def test_jsonl_bad_text_names_line_and_column(
    tmp_path: Path, data: bytes, line: int, where: str
) -> None:
    path = write(tmp_path, "s.jsonl", data)
    message = read_error(path, "jsonl")
    assert message.startswith(f"{path}:{line}: {where}")
    with pytest.raises(SpecError, match=f":{line}: "):  # the load-time peek says the same
        peek_columns(path, "jsonl")


def test_jsonl_bad_byte_past_the_peek_is_found_on_read(tmp_path: Path) -> None:
    """Arrow's fast reader keeps invalid bytes in a string column; validation finds them
    and the rescan names the line."""
    good = "".join(json.dumps({"q": f"row {i}"}) + "\n" for i in range(1500)).encode()
    path = write(tmp_path, "s.jsonl", good + b'{"q": "\xc3\x28"}\n')
    assert peek_columns(path, "jsonl") == ["q"]
    assert read_error(path, "jsonl").startswith(f"{path}:1501: column 'q': not valid UTF-8")
    path = write(tmp_path, "t.jsonl", good + b'{"q": "\\ud834"}\n')
    assert read_error(path, "jsonl").startswith(f"{path}:1501: column 'q': a JSON escape")


def test_valid_text_reads(tmp_path: Path) -> None:
    path = write(tmp_path, "s.jsonl", b'{"q": "\\ud834\\udd1e \\u0000 caf\xc3\xa9"}\n')
    assert read_source(path, "jsonl").column("q").to_pylist() == ["\U0001d11e \x00 café"]


@pytest.mark.parametrize(
    "data, line, where",
    [
        (b"q,r\na,b\nc\xff,d\n", 3, "column 'q': not valid UTF-8 (byte 0xff at byte 2"),
        (b"q,r\na,b\nc,\xed\xa0\x80\n", 3, "column 'r': not valid UTF-8 (byte 0xed"),
        (b"q\xff,r\na,b\n", 1, "the header is not valid UTF-8"),
    ],
    ids=["body", "encoded-surrogate", "header"],
)
def test_csv_bad_text_names_line_and_column(
    tmp_path: Path, data: bytes, line: int, where: str
) -> None:
    path = write(tmp_path, "s.csv", data)
    if line == 1:
        with pytest.raises(SpecError, match="header is not valid UTF-8"):
            peek_columns(path, "csv")
    assert read_error(path, "csv").startswith(f"{path}:{line}: {where}")


def invalid_strings(values: list[bytes]) -> pa.Array:
    """A string array holding arbitrary bytes (what a careless writer can put in Parquet)."""
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def test_parquet_bad_string_names_row_index_and_column(tmp_path: Path) -> None:
    values = [b"ok", b"fine", b"also", "\ud800".encode("utf-8", "surrogatepass"), b"\xff"]
    table = pa.table({"n": list(range(5)), "q": invalid_strings(values)})
    pq.write_table(table, tmp_path / "s.parquet")
    message = read_error(tmp_path / "s.parquet", "parquet")
    assert message == f"{tmp_path / 's.parquet'}: row index 3, column 'q': not valid UTF-8 text"


def test_parquet_nested_bad_string(tmp_path: Path) -> None:
    inner = invalid_strings([b"a", b"b", b"c\xfe"])
    tags = pa.ListArray.from_arrays(pa.array([0, 1, 3], pa.int32()), inner)
    pq.write_table(pa.table({"tags": tags}), tmp_path / "s.parquet")
    message = read_error(tmp_path / "s.parquet", "parquet")
    assert "row index 1, column 'tags'" in message


def test_parquet_binary_columns_are_not_text(tmp_path: Path) -> None:
    pq.write_table(pa.table({"blob": pa.array([b"\xff\xfe"], pa.binary())}), tmp_path / "b.parquet")
    assert read_source(tmp_path / "b.parquet", "parquet").num_rows == 1


TARGET = """fdbuild: 1
name: t
nodes:
  src:
    kind: source
    path: ../data/{name}
  out:
    kind: export
    input: src
    format: jsonl
    path: ../out/t.jsonl
"""


@pytest.mark.parametrize(
    "name, data, where",
    [
        ("s.jsonl", b'{"q": "a"}\n{"q": "\\ud800"}\n', "s.jsonl:2: column 'q'"),
        ("s.jsonl", b'{"q": "a"}\n{"q": "b\xff"}\n', "s.jsonl:2: column 'q'"),
        ("s.csv", b"q\na\nb\xff\n", "s.csv:3: column 'q'"),
    ],
    ids=["surrogate", "jsonl-byte", "csv-byte"],
)
def test_build_exits_2_without_traceback_or_record(
    project: ProjectDir, name: str, data: bytes, where: str
) -> None:
    project.gen({"targets/t.yaml": TARGET.format(name=name)})
    (project.root / "data").mkdir()
    (project.root / "data" / name).write_bytes(data)
    res = project.build("targets/t.yaml", expect=2)
    assert "Traceback" not in res.stderr and where in res.stderr
    assert not (project.root / "fdbuild.lock").exists()
    assert not (project.root / "out").exists()
    assert not list((project.root / ".fdbuild" / "runs").glob("*"))
