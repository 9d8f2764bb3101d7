"""The /autoresearch routes against a real jupyter_server: auth, traversal, malformed files."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autoresearch_magics.server import discovery, payloads

# pytest-jupyter's fixtures (a real jupyter_server per test), for this module only: registered
# as a plugin they would be autouse for the whole suite and close other tests' event loops.
from pytest_jupyter.jupyter_server import *  # noqa: E402,F401,F403

CANARY = "outside-canary-0f3a"


def make_fixture_campaign(folder: Path):
    """Creates a toy campaign with a kept, a discarded and a crashed experiment after the baseline."""
    from autoresearch_magics import Campaign
    campaign = Campaign.init(folder, tag="nov22", template="toy", budget_s=0.3)
    source = (folder / "train.py").read_text()
    campaign.run("baseline")
    better = source.replace("LEARNING_RATE = 0.003", "LEARNING_RATE = 0.01")
    campaign.run("raise the learning rate to 0.01", files={"train.py": better})
    campaign.run("halve the width", files={"train.py": better.replace("WIDTH = 128", "WIDTH = 64")})
    campaign.run("divide by zero", files={"train.py": better + "\n1 / 0\n"})
    return campaign


@pytest.fixture(scope="module")
def built_campaign(tmp_path_factory):
    """One fixture campaign per module (runs take ~0.5 s each); tests get copies of it."""
    home = tmp_path_factory.mktemp("builder-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        folder = tmp_path_factory.mktemp("built") / "nov22"
        make_fixture_campaign(folder)
    return folder


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"autoresearch_magics.server": True}}}


@pytest.fixture
def root(jp_root_dir, built_campaign):
    """The server root: projects/nov22 (a campaign), a noise folder, and a campaign outside linked in."""
    shutil.copytree(built_campaign, jp_root_dir / "projects" / "nov22", symlinks=True)
    (jp_root_dir / "notes").mkdir()
    (jp_root_dir / "notes" / "readme.md").write_text("not a campaign")
    outside = jp_root_dir.parent / "outside"
    shutil.copytree(built_campaign, outside, symlinks=True)
    with open(outside / "results.tsv", "a") as fh:
        fh.write(f"abcdef0\t1.0\t0.0\tkeep\t{CANARY}\n")
    (jp_root_dir / "linked").symlink_to(outside, target_is_directory=True)
    return jp_root_dir


@pytest.fixture
def raw_get(jp_serverapp, http_server_client, jp_base_url, jp_auth_header, jp_asyncio_loop):
    """Sends a request to a path exactly as written (no client-side escaping); returns (code, JSON body)."""
    def request(path, headers=None, method="GET"):
        url = jp_base_url.rstrip("/") + path
        response = jp_asyncio_loop.run_until_complete(http_server_client.fetch(
            url, method=method, body="" if method == "POST" else None, raise_error=False,
            headers=jp_auth_header if headers is None else headers))
        body = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(body)
        except ValueError:
            return response.code, body
    return request


def test_lists_campaigns_under_the_root_with_relative_ids(root, raw_get):
    code, body = raw_get("/autoresearch/campaigns")
    assert code == 200
    assert [c["id"] for c in body["campaigns"]] == ["projects/nov22"]
    entry = body["campaigns"][0]
    assert (entry["tag"], entry["metric"], entry["direction"], entry["running"]) == ("nov22", "val_bpb", "min", None)


def test_status_reports_objective_best_and_delta_to_baseline(root, raw_get):
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/status")
    assert code == 200
    assert body["objective"] == "minimise val_bpb"
    assert body["counts"] == {"keep": 2, "discard": 1, "crash": 1}
    assert body["best"]["experiment"] == 2 and body["baseline"]["experiment"] == 1
    assert body["delta"] == pytest.approx(body["best"]["value"] - body["baseline"]["value"])
    assert body["running"] is None and body["report"] == {"name": "autoresearch-summary.md", "exists": False}
    assert "attempted" in body["stop"]["progress"]


def test_results_match_results_tsv(root, raw_get):
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/results")
    assert code == 200
    lines = (root / "projects" / "nov22" / "results.tsv").read_text().splitlines()
    assert body["columns"] == lines[0].split("\t")
    assert [[row[c] for c in body["columns"]] for row in body["rows"]] == [line.split("\t") for line in lines[1:]]
    assert [row["status"] for row in body["rows"]] == ["keep", "keep", "discard", "crash"]


def test_experiment_gives_diff_and_bounded_log_tail(root, raw_get):
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/experiments/2?lines=3")
    assert code == 200
    assert "-LEARNING_RATE = 0.003" in body["diff"] and "+LEARNING_RATE = 0.01" in body["diff"]
    assert 0 < len(body["log_tail"]) <= 3 and body["log_tail"][-1].startswith("depth:")
    assert body["log_path"] == "logs/0002.log" and body["diff_truncated"] is False
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/experiments/4?lines=100000")
    assert code == 200 and len(body["log_tail"]) <= payloads.MAX_TAIL_LINES
    assert any("ZeroDivisionError" in line for line in body["log_tail"])


def test_unknown_experiment_is_404(root, raw_get):
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/experiments/99")
    assert code == 404 and "no experiment 99" in body["message"]


def test_root_campaign_is_reached_without_an_id(jp_root_dir, built_campaign, raw_get):
    shutil.copytree(built_campaign, jp_root_dir, symlinks=True, dirs_exist_ok=True)
    code, body = raw_get("/autoresearch/campaigns")
    assert [c["id"] for c in body["campaigns"]] == ["."]
    code, body = raw_get("/autoresearch/campaigns/status")
    assert code == 200 and body["id"] == "." and body["tag"] == "nov22"
    code, body = raw_get("/autoresearch/campaigns/results")
    assert code == 200 and len(body["rows"]) == 4


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong-token"}], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("path", ["/autoresearch/campaigns", "/autoresearch/campaigns/projects/nov22/status",
                                  "/autoresearch/campaigns/projects/nov22/experiments/2"])
def test_every_route_needs_the_token(root, raw_get, path, headers):
    code, body = raw_get(path, headers=headers)
    assert code == 403
    assert "nov22" not in json.dumps(body)


def test_stop_without_token_is_refused(root, raw_get):
    code, _ = raw_get("/autoresearch/campaigns/projects/nov22/stop", headers={}, method="POST")
    assert code == 403


@pytest.mark.parametrize("path", [
    "/autoresearch/campaigns/../status",
    "/autoresearch/campaigns/projects/../../status",
    "/autoresearch/campaigns/%2E%2E/status",
    "/autoresearch/campaigns/projects/%2e%2e/%2e%2e/results",
    "/autoresearch/campaigns/..%2F..%2Fetc/status",
    "/autoresearch/campaigns//etc/status",
    "/autoresearch/campaigns/%2Fetc/status",
    "/autoresearch/campaigns/projects/nov22/.git/status",
    "/autoresearch/campaigns/linked/status",
    "/autoresearch/campaigns/linked/results",
    "/autoresearch/campaigns/linked/experiments/2",
    "/autoresearch/campaigns/notes/status",
    "/autoresearch/campaigns/%252E%252E/status",
])
def test_ids_that_escape_the_root_get_4xx_and_read_nothing(root, raw_get, monkeypatch, path):
    opened = []
    monkeypatch.setattr(payloads, "_open", lambda folder: opened.append(folder))
    code, body = raw_get(path)
    assert 400 <= code < 500, (code, body)
    assert opened == []
    assert CANARY not in json.dumps(body)


def test_symlinked_campaign_outside_is_not_listed(root, raw_get):
    code, body = raw_get("/autoresearch/campaigns")
    assert "linked" not in [c["id"] for c in body["campaigns"]]


def test_log_path_pointing_outside_is_refused(root, raw_get):
    results = root / "projects" / "nov22" / "results.tsv"
    secret = root.parent / "secret.log"
    secret.write_text(CANARY + "\n")
    results.write_text(results.read_text().replace("logs/0002.log", str(secret)))
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/experiments/2")
    assert code == 403 and CANARY not in json.dumps(body)


def test_malformed_results_tsv_is_422_naming_the_line(root, raw_get):
    results = root / "projects" / "nov22" / "results.tsv"
    with open(results, "a") as fh:
        fh.write("1234567\tnot-a-number\t0.0\tkeep\tbroken row\n")
    for route in ("status", "results"):
        code, body = raw_get(f"/autoresearch/campaigns/projects/nov22/{route}")
        assert code == 422
        assert "line 6" in body["message"] and "val_bpb" in body["message"]
    code, body = raw_get("/autoresearch/campaigns")
    assert code == 200 and [c["id"] for c in body["campaigns"]] == ["projects/nov22"]


def test_stop_signals_only_a_running_experiment(root, raw_get):
    folder = root / "projects" / "nov22"
    head = (folder / ".git" / "HEAD").read_text()
    code, body = raw_get("/autoresearch/campaigns/projects/nov22/stop", method="POST")
    assert (code, body) == (200, {"requested": False})
    assert not (folder / ".autoresearch" / "stop-request").exists()
    assert (folder / ".git" / "HEAD").read_text() == head


def test_walk_skips_hidden_vendor_and_deep_folders(tmp_path):
    def fake(path):
        (path / ".autoresearch").mkdir(parents=True)
        (path / ".autoresearch" / "campaign.json").write_text(json.dumps({"tag": path.name}))
    fake(tmp_path / "a")
    fake(tmp_path / ".hidden" / "b")
    fake(tmp_path / "node_modules" / "c")
    fake(tmp_path / "a" / "logs" / "d")
    fake(tmp_path.joinpath(*["x"] * (discovery.MAX_DEPTH + 1)))
    fake(tmp_path.joinpath(*["y"] * discovery.MAX_DEPTH))
    ids = [c["id"] for c in discovery.list_campaigns(tmp_path)]
    assert ids == ["a", "/".join(["y"] * discovery.MAX_DEPTH)]
