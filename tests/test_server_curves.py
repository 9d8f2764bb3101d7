"""The curve and proposal routes: the curve payload from a curve DataFrame, and run/skip decisions
written for the runner, against a real jupyter_server."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from autoresearch_magics.server import curves, payloads, proposals
# pytest-jupyter's fixtures first, so that test_server's jp_server_config (which enables the
# extension) overrides its default
from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403
from test_server import built_campaign, jp_server_config, root  # noqa: E402,F401  (fixtures)

NOV22 = "/autoresearch/campaigns/projects/nov22"


def frame(points):
    """Returns a long curve DataFrame from (experiment, run, step, training_seconds, loss) tuples."""
    return pd.DataFrame(points, columns=["experiment", "run", "step", "training_seconds", "loss"])


@pytest.fixture
def call(jp_serverapp, http_server_client, jp_base_url, jp_auth_header, jp_asyncio_loop):
    """Sends a request; returns (code, JSON body)."""
    def request(path, method="GET", body=None, headers=None):
        response = jp_asyncio_loop.run_until_complete(http_server_client.fetch(
            jp_base_url.rstrip("/") + path, method=method, raise_error=False,
            body=None if method == "GET" else json.dumps(body) if not isinstance(body, (bytes, str)) else body,
            headers=jp_auth_header if headers is None else headers))
        text = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(text)
        except ValueError:
            return response.code, text
    return request


# ---------------------------------------------------------------- the payload, from a DataFrame

def test_payload_takes_the_latest_run_by_training_time_beside_the_best():
    df = frame([(1, 1, 0, 0.0, 4.0), (1, 1, 1, 1.0, 3.0),
                (2, 1, 2, 2.0, 2.5), (2, 1, 0, 0.0, 4.1), (2, 1, 1, 1.0, float("nan")),
                (2, 2, 0, 0.0, 3.9), (2, 2, 1, 1.5, 2.9),
                (3, 1, 0, 0.5, 5.0)])
    payload = curves.curve_payload(df, 2, best=1)
    assert payload["experiment"] == 2 and payload["run"] == 2
    assert payload["points"] == [{"training_seconds": 0.0, "step": 0, "loss": 3.9},
                                 {"training_seconds": 1.5, "step": 1, "loss": 2.9}]
    assert payload["best"] == {"experiment": 1, "run": 1, "points": [
        {"training_seconds": 0.0, "step": 0, "loss": 4.0}, {"training_seconds": 1.0, "step": 1, "loss": 3.0}]}
    json.dumps(payload)  # plain JSON, no numpy scalars


def test_payload_of_the_best_itself_has_no_second_curve_and_unknown_runs_are_empty():
    df = frame([(1, 1, 0, 0.0, 4.0), (1, 1, 1, 1.0, 3.0)])
    assert curves.curve_payload(df, 1, best=1)["best"] is None
    assert curves.curve_payload(df, 1, best=None)["best"] is None
    assert curves.curve_payload(df, 7, best=1) == {
        "experiment": 7, "run": None, "points": [], "best": {"experiment": 1, "run": 1, "points": [
            {"training_seconds": 0.0, "step": 0, "loss": 4.0}, {"training_seconds": 1.0, "step": 1, "loss": 3.0}]}}


def test_payload_drops_points_without_a_training_time_and_thins_long_curves_keeping_the_end():
    rows = [(5, 1, k, k * 0.1, 10.0 - k * 0.001) for k in range(5000)] + [(5, 1, 5000, None, 1.0)]
    points = curves.curve_payload(frame(rows), 5, best=None, limit=100)["points"]
    assert len(points) == 100
    assert points[0]["step"] == 0 and points[-1]["step"] == 4999
    steps = [p["step"] for p in points]
    assert steps == sorted(steps) and max(b - a for a, b in zip(steps, steps[1:])) <= 51


# ---------------------------------------------------------------- the curve route

def test_curve_route_is_501_naming_the_fix_without_the_core_curve_module(root, call, monkeypatch):
    monkeypatch.setattr(curves, "CURVES_MODULE", "autoresearch_magics.core.no_such_curve_module")
    code, body = call(f"{NOV22}/experiments/2/curve")
    assert code == 501 and "upgrade" in body["message"] and "curves" in body["message"]


def test_curve_route_asks_the_core_for_the_experiment_and_the_best(root, call, monkeypatch):
    asked = []

    def reader(campaign, experiments):
        asked.append((campaign.config.tag, sorted(experiments)))
        return frame([(n, 1, k, k * 0.5, 4.0 - n * 0.1 - k * 0.2) for n in experiments for k in range(3)])
    monkeypatch.setattr(curves, "curve_reader", lambda: reader)
    code, body = call(f"{NOV22}/experiments/3/curve")
    assert code == 200, body
    assert asked == [("nov22", [2, 3])]  # experiment 2 is the fixture's best
    assert [p["training_seconds"] for p in body["points"]] == [0.0, 0.5, 1.0]
    assert body["best"]["experiment"] == 2 and body["best"]["points"][0]["loss"] == pytest.approx(3.8)


@pytest.mark.skipif(curves.curve_reader() is None, reason="autoresearch_magics.core.curves is not in this tree yet")
def test_curve_route_reads_the_fixture_runs_progress_lines(root, call):
    code, body = call(f"{NOV22}/experiments/3/curve")
    assert code == 200, body
    assert body["points"] and all(p["loss"] > 0 for p in body["points"])
    assert body["best"]["experiment"] == 2 and body["best"]["points"]


def test_curve_route_refuses_unknown_experiments_unsafe_ids_and_missing_tokens(root, call, monkeypatch):
    opened = []
    monkeypatch.setattr(curves, "curve_reader", lambda: lambda campaign, wanted: opened.append(wanted))
    code, body = call(f"{NOV22}/experiments/99/curve")
    assert code == 404 and "no experiment 99" in body["message"]
    for path in ("/autoresearch/campaigns/projects/../../experiments/2/curve",
                 "/autoresearch/campaigns/linked/experiments/2/curve",
                 "/autoresearch/campaigns/%2E%2E/experiments/2/curve"):
        code, _ = call(path)
        assert 400 <= code < 500, path
    code, _ = call(f"{NOV22}/experiments/2/curve", headers={})
    assert code == 403
    assert opened == []


# ---------------------------------------------------------------- the proposal route

def wait_on(folder, experiment=5, runner_pid=None):
    """Writes the live state of a runner (this test process) waiting on proposal `experiment`."""
    live = {"state": "running", "experiment": experiment, "runner_pid": runner_pid or os.getpid(),
            "waiting_proposal": {"experiment": experiment, "description": "try a wider model",
                                 "diff": "-WIDTH = 128\n+WIDTH = 256\n"}}
    (folder / ".autoresearch" / "live.json").write_text(json.dumps(live))


def decision_of(folder):
    path = folder / ".autoresearch" / proposals.DECISION_NAME
    return json.loads(path.read_text()) if path.exists() else None


def test_run_and_skip_write_the_decision_for_the_runner(root, call):
    folder = root / "projects" / "nov22"
    wait_on(folder)
    head = (folder / ".git" / "HEAD").read_text()
    results = (folder / "results.tsv").read_text()
    code, body = call(f"{NOV22}/proposal", "POST", {"decision": "run", "experiment": 5})
    assert code == 200 and body["written"] is True
    written = decision_of(folder)
    assert {k: written[k] for k in ("experiment", "decision", "reason")} == {
        "experiment": 5, "decision": "run", "reason": ""}
    code, body = call(f"{NOV22}/proposal", "POST", {"decision": "skip", "reason": "  tried widths already \n"})
    assert code == 200
    assert (decision_of(folder)["decision"], decision_of(folder)["reason"]) == ("skip", "tried widths already")
    assert (folder / ".git" / "HEAD").read_text() == head and (folder / "results.tsv").read_text() == results
    assert [p.name for p in (folder / ".autoresearch").iterdir() if p.name.endswith(".tmp")] == []


def test_root_campaign_proposal_is_reached_without_an_id(jp_root_dir, built_campaign, call):  # noqa: F811
    import shutil
    shutil.copytree(built_campaign, jp_root_dir, symlinks=True, dirs_exist_ok=True)
    wait_on(jp_root_dir, experiment=9)
    code, body = call("/autoresearch/campaigns/proposal", "POST", {"decision": "skip"})
    assert code == 200 and decision_of(jp_root_dir)["experiment"] == 9


@pytest.mark.parametrize("body, words", [
    ({"decision": "maybe"}, "decision must be one of run, skip"),
    ({}, "decision must be one of"),
    ({"decision": "skip", "reason": 3}, "reason must be a string"),
    ({"decision": "skip", "reason": "x" * (proposals.MAX_REASON_CHARS + 1)}, "keep it under"),
    ({"decision": "run", "experiment": "5"}, "experiment must be"),
    ("not json", "must be JSON"),
    ("[1, 2]", "JSON object"),
])
def test_bad_decisions_are_400_and_write_nothing(root, call, body, words):
    folder = root / "projects" / "nov22"
    wait_on(folder)
    code, answer = call(f"{NOV22}/proposal", "POST", body)
    assert code == 400 and words in answer["message"]
    assert decision_of(folder) is None


def test_decision_without_a_waiting_proposal_or_for_a_stale_one_is_409(root, call):
    folder = root / "projects" / "nov22"
    code, body = call(f"{NOV22}/proposal", "POST", {"decision": "run"})
    assert code == 409 and "not waiting on a proposal" in body["message"]
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    wait_on(folder, runner_pid=dead)  # the runner that was waiting has gone
    code, body = call(f"{NOV22}/proposal", "POST", {"decision": "run"})
    assert code == 409
    wait_on(folder, experiment=6)
    code, body = call(f"{NOV22}/proposal", "POST", {"decision": "run", "experiment": 5})
    assert code == 409 and "#5 is no longer waiting (#6 is)" in body["message"]
    assert decision_of(folder) is None


def test_decision_needs_the_token_and_a_safe_id(root, call, monkeypatch):
    folder = root / "projects" / "nov22"
    wait_on(folder)
    code, _ = call(f"{NOV22}/proposal", "POST", {"decision": "run"}, headers={})
    assert code == 403
    for path in ("/autoresearch/campaigns/projects/../../proposal", "/autoresearch/campaigns/linked/proposal",
                 "/autoresearch/campaigns/projects/nov22/.autoresearch/proposal"):
        code, _ = call(path, "POST", {"decision": "run"})
        assert 400 <= code < 500, path
    assert decision_of(folder) is None
    assert decision_of(root.parent / "outside") is None
    assert payloads.MAX_TAIL_LINES  # the shared route module is the one the server loaded
