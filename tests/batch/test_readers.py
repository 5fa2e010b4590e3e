"""Readers: batches of bounded size, row numbers, bad lines kept aside, types per batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlreg.batch.formats import format_of, is_json_field
from mlreg.batch.readers import infer_types, open_reader
from mlreg.errors import ArtifactNotFound, InvalidInput, SchemaError
from mlreg.models.signature import ColSpec, Schema


def chunks(path, fmt, batch_size=3, schema=None):
    reader = open_reader(str(path), fmt, batch_size, schema)
    try:
        return list(reader)
    finally:
        reader.close()


def test_parquet_streams_batches_no_larger_than_the_batch_size(tmp_path):
    path = tmp_path / "big.parquet"
    # Row groups far larger than the batch: the reader still hands out batch-sized pieces.
    pq.write_table(pa.table({"x": np.arange(10_000)}), path, row_group_size=5_000)
    got = chunks(path, "parquet", batch_size=1_000)
    assert [c.table.num_rows for c in got] == [1_000] * 10
    assert np.array_equal(np.concatenate([c.rows for c in got]), np.arange(1, 10_001))
    assert np.array_equal(
        np.concatenate([c.table.column("x").to_numpy() for c in got]), np.arange(10_000)
    )


def test_csv_rows_are_typed_per_batch_and_numbered(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("a,b,c\n1,x,true\n2,y,false\n3.5,z,true\n4,,false\n")
    got = chunks(path, "csv", batch_size=2)
    assert [c.typed for c in got] == [False, False]  # text, typed by the scorer per batch
    assert [infer_types(c.table).schema.types for c in got] == [
        [pa.int64(), pa.string(), pa.bool_()],
        [pa.float64(), pa.string(), pa.bool_()],
    ]
    assert [c.rows.tolist() for c in got] == [[1, 2], [3, 4]]
    assert got[1].table.column("b").to_pylist() == ["z", None]


def test_csv_lines_with_the_wrong_number_of_fields_become_bad_rows(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n")
    got = chunks(path, "csv", batch_size=10)
    assert [c.rows.tolist() for c in got] == [[1, 3, 5]]
    assert [(b.row, b.error, b.values) for b in got[0].bad] == [
        (2, "expected 2 fields (one per column), got 1", {"line": "3"}),
        (4, "expected 2 fields (one per column), got 3", {"line": "6,7,8"}),
    ]
    assert got[0].table.column("a").to_pylist() == ["1", "4", "9"]


def test_jsonl_bad_lines_are_numbered_and_mixed_columns_become_json_text(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n{"a": "x"}\nnot json\n\n[1, 2]\n{"a": [1, 2]}\n')
    (chunk,) = chunks(path, "jsonl", batch_size=10)
    assert chunk.rows.tolist() == [1, 2, 5]
    assert [(b.row, b.error[:15]) for b in chunk.bad] == [
        (3, "malformed JSON:"),
        (4, "expected a JSON"),
    ]
    assert is_json_field(chunk.table.field("a"))
    assert chunk.table.column("a").to_pylist() == ["1", '"x"', "[1,2]"]


def test_json_payload_is_decoded_as_the_server_decodes_it(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(
        '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4], [5, 6]]},'
        ' "params": {"k": 1}}'
    )
    reader = open_reader(str(path), "json", 2, None)
    assert reader.params == {"k": 1}
    got = list(reader)
    assert [c.table.column("a").to_pylist() for c in got] == [[1, 3], [5]]
    assert [c.rows.tolist() for c in got] == [[1, 2], [3]]


def test_json_payload_rejects_columns_the_signature_does_not_name(tmp_path):
    path = tmp_path / "in.json"
    path.write_text('{"dataframe_records": [{"a": 1, "zz": 2}]}')
    with pytest.raises(SchemaError) as e:
        open_reader(str(path), "json", 2, Schema([ColSpec("double", "a")]))
    assert e.value.message == (
        f"{path}: unexpected column 'zz' in 'dataframe_records'; expected columns: 'a'"
    )


@pytest.mark.parametrize(
    ("content", "fmt", "error", "message"),
    [
        (b"", "csv", InvalidInput, "{p}: empty CSV; expected a header row and rows"),
        (b"not parquet", "parquet", InvalidInput, "{p} is not a readable Parquet file: "),
        (b"{", "json", InvalidInput, "{p}: malformed JSON: "),
        (b'{"foo": 1}', "json", InvalidInput, "{p}: unknown field 'foo'; expected exactly one"),
        (b"a,a\n1,2\n", "csv", InvalidInput, "{p}: duplicate column 'a' in the header"),
    ],
    ids=["empty-csv", "not-parquet", "malformed-json", "not-a-payload", "duplicate-header"],
)
def test_unreadable_inputs_say_what_is_wrong(tmp_path, content, fmt, error, message):
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(content)
    with pytest.raises(error) as e:
        chunks(path, fmt)
    assert e.value.message.startswith(message.format(p=path))


def test_a_missing_input_is_not_found(tmp_path):
    with pytest.raises(ArtifactNotFound, match=r"input .*nope.csv does not exist"):
        open_reader(str(tmp_path / "nope.csv"), "csv", 10, None)


@pytest.mark.parametrize(
    ("path", "given", "fmt"),
    [
        ("a.csv", None, "csv"),
        ("a.CSV.gz", None, "csv"),
        ("a.ndjson", None, "jsonl"),
        ("a.pq", None, "parquet"),
        ("a.txt", "json", "json"),
        ("-", "jsonl", "jsonl"),
    ],
)
def test_format_from_extension_or_flag(path, given, fmt):
    assert format_of(path, given, "input") == fmt


def test_format_of_stdin_needs_the_flag():
    with pytest.raises(InvalidInput, match="cannot tell the input format of standard input"):
        format_of("-", None, "input")


def test_infer_types_keeps_text_that_is_not_all_numbers():
    table = pa.table(
        {
            "n": ["1", "2"],
            "f": ["1", "2.5"],
            "s": ["1", "a"],
            "e": pa.array([None, None], pa.string()),
        }
    )
    assert infer_types(table).schema.types == [pa.int64(), pa.float64(), pa.string(), pa.string()]


def test_parquet_memory_stays_bounded_by_the_batch_not_the_file(tmp_path):
    path = tmp_path / "wide.parquet"
    rows, width = 40_000, 1024  # 160 MB of float32, 40 row groups of 4 MB
    values = np.random.default_rng(0).random((rows, width), dtype=np.float32)
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), width)})
    pq.write_table(table, path, row_group_size=1_000, compression="none")
    del table, values
    before = pa.total_allocated_bytes()
    peak = 0
    reader = open_reader(str(path), "parquet", 500, None)
    for chunk in reader:
        assert chunk.table.num_rows == 500
        peak = max(peak, pa.total_allocated_bytes() - before)
        del chunk
    reader.close()
    # A batch is 2 MB and a row group 4 MB: whatever is held stays within a few of them.
    assert peak < 16 * 2**20, peak
