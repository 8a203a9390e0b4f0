"""The whole launcher path on this machine (submitit's local executor): 3 shards of a tiny suite, one killed
mid-way and resubmitted, one preempted and requeued; the merged run equals the unsharded one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import comparable, run_cli, tiny_launch_suite

from harness.launch.shard import FAULT_ENV
from harness.results import load_run

pytest.importorskip("submitit")

def test_killed_and_preempted_shards_resume_and_the_merge_equals_the_unsharded_run(tmp_path, plugin_file, capsys,
                                                                                     monkeypatch):
    suite = tiny_launch_suite(tmp_path, plugin_file)
    monkeypatch.setenv(FAULT_ENV, "2/3:kill:1,3/3:preempt:1")
    code, out, err = run_cli(capsys, "run", suite, "--launcher", "local", "--shards", 3, "--out", tmp_path / "r",
                             "--reports", tmp_path / "p", "--no-progress")
    assert code == 0, err
    merged_dir, report = Path(out[0]), Path(out[1])
    (launch_dir,) = (tmp_path / "r" / "launched").glob("launch-*")
    assert merged_dir.name == launch_dir.name.removeprefix("launch-")
    state = json.loads((launch_dir / "launch.json").read_text())
    attempts = {s["name"]: len(s["attempts"]) for s in state["shards"]}
    assert attempts == {"1/3": 1, "2/3": 2, "3/3": 1}  # killed: resubmitted; preempted: requeued as the same job
    assert "shard 2/3 failed (the shard's process ended without a result" in err and "resubmitting it once" in err
    assert all(s["state"] == "done" for s in state["shards"])
    requeued = Path(state["shards"][2]["attempts"][0]["stdout"]).read_text()
    assert "this job is preempted" in requeued and "Requeued job" in requeued

    for shard in ("shard-2of3", "shard-3of3"):  # stopped after the first record, resumed: each task once
        (records,) = (launch_dir / shard).glob("launched/*/records.jsonl")
        ids = [json.loads(line)["task_id"] for line in records.read_text().splitlines()]
        assert len(ids) == 2 and len(set(ids)) == 2

    merged = load_run(merged_dir)
    assert merged.manifest["incomplete"] == [] and len(merged.manifest["merged_from"]) == 3
    assert {r["shard"]["index"] for r in merged.records} == {0, 1, 2}
    code, out, err = run_cli(capsys, "run", suite, "--out", tmp_path / "u", "--reports", tmp_path / "p",
                             "--no-progress")
    assert code == 0, err
    unsharded = load_run(Path(out[0]))
    assert len(unsharded.records) == 6
    assert comparable(merged.records) == comparable(unsharded.records)
    text = report.read_text()
    assert "Merged from shards" in text and "Incomplete" not in text
