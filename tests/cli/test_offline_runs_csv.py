"""CSV parsing of runs (service/io/runs_csv.py), shared by the CLI and the HTTP import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.io.runs_csv import CsvFormatError, parse_runs_csv

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"


def test_three_published_formats_parse_with_aliases() -> None:
    epoch = parse_runs_csv((DATA / "epoch_chinchilla_svg_extracted_data.csv").read_text())
    kyo = parse_runs_csv((DATA / "kyo_chinchilla_llm_df.csv").read_text())
    athena = parse_runs_csv((DATA / "openathena_isoflops_extract.csv").read_text())
    assert (len(epoch), len(kyo), len(athena)) == (245, 234, 947)
    assert epoch.columns["params"] == "Model Size"
    assert kyo.columns["tokens"] == "D"
    assert athena.columns["budget"] == "budget"
    assert len(athena.experiments()) == 8
    runs = epoch.to_runs()
    # Epoch's file has no tokens: D = C / (6N).
    np.testing.assert_allclose(6 * runs.params * runs.tokens, runs.flops, rtol=1e-12)


def test_bad_rows_are_reported_and_filters_counted() -> None:
    text = "N,D,loss\n1e8,1e9,3.0\n2e8,x,2.9\n3e8,3e9,0\n4e8,4e9,5.0\n5e8,5e9,2.7\n"
    parsed = parse_runs_csv(text, max_loss=4.0)
    assert parsed.lines == [2, 6]
    assert [(e.line, e.column) for e in parsed.errors] == [(3, "D"), (4, "loss")]
    assert parsed.filtered == [(5, "loss 5 >= max_loss 4")]


def test_missing_columns_are_named() -> None:
    with pytest.raises(CsvFormatError, match="tokens or flops"):
        parse_runs_csv("params,loss\n1e8,3.0\n")


def test_mid_schedule_rows_are_left_out_and_trunks_group_rows() -> None:
    text = (
        "params,tokens,loss,loss_provenance,trunk_key\n"
        "1e8,1e9,3.0,after_cooldown,t1\n"
        "1e8,2e9,2.9,after_cooldown,t1\n"
        "1e8,3e9,2.95,mid_schedule,t1\n"
        "2e8,1e9,2.8,,\n"
        "3e8,1e9,2.7,end_of_schedule,\n"
        "4e8,1e9,2.6,peak,\n"
    )
    parsed = parse_runs_csv(text)
    assert [line for line, _ in parsed.filtered] == [4]
    assert "mid_schedule" in parsed.filtered[0][1]
    assert [(e.line, e.column) for e in parsed.errors] == [(7, "loss_provenance")]
    runs = parsed.to_runs()
    assert runs.groups is not None
    # The two branches of t1 share a group; each run without a trunk is a group of its own.
    assert runs.groups[0] == runs.groups[1]
    assert len(set(runs.groups.tolist())) == 3

    everything = parse_runs_csv(text, include_mid_schedule=True)
    assert (len(everything), everything.filtered) == (5, [])
