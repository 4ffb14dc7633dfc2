"""benchmarks/dataflow_cost.py on the language registry: sizes, rates, worker counts, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import dataflow_cost as cost
from mdeberta.languages import get_language, resolve_languages

TARGET_H = 6.0


def _xz(preset: str) -> int:
    return sum(get_language(code).cc100_bytes for code in resolve_languages(preset))


@pytest.fixture(scope="module")
def result():
    return cost.report(["xnli", "all"], TARGET_H)


def test_sizes_are_the_registry_files(result):
    assert result["sets"]["xnli"]["languages"] == 15
    assert result["sets"]["all"]["languages"] == len(resolve_languages("all")) == 116
    for preset in ("xnli", "all"):
        text_gb = _xz(preset) * cost.TEXT_PER_XZ_BYTE / 1e9
        for estimate in result["sets"][preset]["jobs"].values():
            assert estimate["text_gb"] == pytest.approx(text_gb, abs=0.05)
    # the expansion ratio is calibrated so that all of CC-100 is XLM-R's 2.5 TB of text
    assert result["sets"]["all"]["jobs"]["clean"]["text_gb"] == pytest.approx(2500, abs=0.5)


def _texts(preset: str) -> list[float]:
    return [get_language(c).cc100_bytes * cost.TEXT_PER_XZ_BYTE for c in resolve_languages(preset)]


def test_cpu_and_shuffles_follow_the_measured_rates(result):
    texts = _texts("all")
    text, sizes = sum(texts), cost._sizes(texts)
    jobs = result["sets"]["all"]["jobs"]
    per_worker = {
        job: cost.MACHINES[cost.JOB_MACHINES[job]][0] * cost.STARTUP_HOURS for job in jobs
    }
    clean_h = text / 1e6 / cost.CLEAN_MB_PER_CORE_S / 3600
    shard_h = text * cost.TOKENS_PER_TEXT_BYTE / cost.SHARD_TOKENS_PER_CPU_S / 3600
    # scratch operations wait one after another, but the ranged reads of runs 16 at a time
    runs = {"clean": sizes["key_runs"] + sizes["drop_runs"], "shard": sizes["runs"]}
    for job, hours in (("clean", clean_h), ("shard", shard_h)):
        ops = jobs[job]["scratch_operations"]
        serial = ops["writes"] + ops["reads"] - runs[job] + runs[job] / cost.READ_THREADS
        expected = hours + serial * cost.SCRATCH_LATENCY_S / 3600
        expected += jobs[job]["workers"] * per_worker[job]
        assert jobs[job]["vcpu_hours"] == pytest.approx(expected, abs=0.05)
    # no text crosses a shuffle, and no hash: names of batches and runs, a slot per row
    shuffled = jobs["clean"]["shuffle_gb"]
    assert sum(shuffled.values()) < text / 1e9 / 1000
    rows = text * cost.TOKENS_PER_TEXT_BYTE / cost.SEQ_LEN
    slots = (rows * 8 + sizes["runs"] * 60) / 1e9
    assert jobs["shard"]["shuffle_gb"]["GroupShards"] == pytest.approx(slots, rel=0.01)
    # clean writes each batch three times (raw, kept, keys), each bucket's drops once
    documents = text / cost.BYTES_PER_PARAGRAPH / cost.PARAGRAPHS_PER_DOCUMENT
    batches = max(text / cost.SCRATCH_CHARS, documents / cost.SCRATCH_DOCS)
    writes = jobs["clean"]["scratch_operations"]["writes"]
    assert writes == pytest.approx(3 * batches + sizes["buckets"], rel=0.05)
    # shard reads a run per (chunk, writing task) that holds rows of the chunk
    chunks = text / cost.CHUNK_CHARS
    tasks = rows / cost.SEQUENCES_PER_SHARD / cost.REMOTE_SHARDS_PER_TASK
    assert sizes["runs"] == pytest.approx(min(rows, chunks * tasks), rel=0.05)
    # no side input grows with the text: the largest is the per-part counters
    assert jobs["clean"]["largest_side_input"]["name"] == "MergeStats"
    assert all(v["mb"] < 100 for j in jobs.values() for v in j["side_inputs"].values())


def test_workers_are_the_fewest_that_meet_the_wall_time(result):
    codes = resolve_languages("all")
    text = _xz("all") * cost.TEXT_PER_XZ_BYTE
    largest = max(get_language(c).cc100_bytes for c in codes) * cost.TEXT_PER_XZ_BYTE
    for job, estimate in result["sets"]["all"]["jobs"].items():
        vcpus = cost.MACHINES[estimate["machine"]][0]
        sizes = (cost.cpu_seconds(job, _texts("all")), text, largest)
        workers = estimate["workers"]
        assert cost.wall_hours(job, workers, vcpus, *sizes) <= TARGET_H
        assert workers == 1 or cost.wall_hours(job, workers - 1, vcpus, *sizes) > TARGET_H
    # the cleaning job cannot beat one task reading the largest file (en), whatever the workers
    floor = cost.STARTUP_HOURS + largest / 1e6 / cost.READ_MB_PER_CORE_S / 3600
    assert result["sets"]["all"]["jobs"]["clean"]["wall_floor_hours"] == pytest.approx(floor, 0.01)
    assert cost.estimate("clean", codes, floor - 0.1)["workers"] is None


def test_shuffle_share_and_json(capsys):
    printed = cost.main(["--sets", "xnli;sw,yo", "--wall-hours", "3"])
    assert json.loads(capsys.readouterr().out) == printed
    assert printed["sets"]["sw,yo"]["languages"] == 2
    for estimate in printed["sets"]["xnli"]["jobs"].values():
        dollars = estimate["cost_usd"]
        share = dollars["shuffle"] / sum(dollars.values())
        assert estimate["shuffle_share"] == pytest.approx(share, abs=0.002)


def test_markdown_table_has_a_row_per_set_and_job(capsys):
    printed = cost.main(["--sets", "xnli;all", "--markdown"])
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 2 + 2 * len(cost.SHUFFLES)
    assert rows[2].startswith("| xnli (15) | clean | ")
    assert f"| {printed['sets']['all']['jobs']['shard']['shuffle_share']:.0%} |" in rows[-1]


def test_docs_table_is_what_the_script_prints():
    docs = Path(__file__).resolve().parents[2] / "docs" / "dataflow.md"
    table = cost.markdown(cost.report(["xnli", "all"], TARGET_H))
    assert table in docs.read_text(encoding="utf-8"), "rerun: dataflow_cost.py --markdown"
