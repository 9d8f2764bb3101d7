"""The campaign report: a Markdown summary with kept steps, failures, crashes and next steps."""
import subprocess
from pathlib import Path
import sys

from autoresearch_magics.presentation.report import campaign_report, write_report


def test_report_covers_result_kept_steps_failures_and_crashes(toy_campaign):
    c = toy_campaign
    c.run("baseline")
    path = c.paths.root / "train.py"
    text = path.read_text()
    path.write_text(text.replace("LEARNING_RATE = 0.003", "LEARNING_RATE = 0.008"))
    c.run("raise the learning rate")
    path.write_text(path.read_text().replace("WIDTH = 128", "WIDTH = 16"))
    c.run("narrow | model")
    path.write_text("raise RuntimeError('boom')\n")
    c.run("broken script")
    report = campaign_report(c, hardware={"device": "cpu", "cpu_count": 2, "bf16_fast": False, "torch": "2.x"})
    assert "# Campaign `test`" in report and "CPU only, 2 cores" in report
    assert "Experiments: 4 (2 kept, 1 discarded, 1 crashed; 4 runs)" in report
    assert "| 2 |" in report and "raise the learning rate" in report
    assert "narrow \\| model" in report                    # table cells stay intact
    assert "exit code 1: RuntimeError: boom" in report
    assert "## Next steps" in report and "--keep-rule repeats" in report
    best, base = c.status()["best"]["value"], c.status()["baseline"]["value"]
    assert f"{base:.6f}** → best **{best:.6f}" in report


def test_report_command_writes_summary_and_plot(toy_campaign):
    toy_campaign.run("baseline")
    proc = subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", "report", "--no-hardware", "-C",
                           str(toy_campaign.paths.root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = toy_campaign.paths.root / "autoresearch-summary.md"
    assert summary.exists() and (toy_campaign.paths.root / "progress.png").read_bytes()[:4] == b"\x89PNG"
    assert "![progress](progress.png)" in summary.read_text()


def test_report_of_an_empty_campaign_suggests_the_baseline(toy_campaign):
    path = write_report(toy_campaign)
    assert "Run the baseline" in path.read_text()


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=u", "-c", "user.email=u@x", *args], cwd=cwd, capture_output=True,
                          text=True, check=True).stdout


def _report(folder, *extra):
    proc = subprocess.run([sys.executable, "-m", "autoresearch_magics.cli", "report", "--no-hardware", "-C",
                           str(folder), *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_a_tracked_progress_png_is_never_overwritten_and_the_report_says_where_it_went(tmp_path):
    import shutil
    from autoresearch_magics import Campaign
    checkout = tmp_path / "autoresearch"  # a checkout that ships its own progress.png, as the reference does
    checkout.mkdir()
    shutil.copy(Path(__file__).parent.parent / "autoresearch_magics" / "templates" / "toy" / "train.py", checkout)
    (checkout / "progress.png").write_bytes(b"\x89PNG the project's own figure")
    (checkout / "README.md").write_text("![progress](progress.png)\n")
    _git(checkout, "init", "-q", "-b", "master")
    _git(checkout, "add", ".")
    _git(checkout, "commit", "-qm", "upstream")
    c = Campaign.init(checkout, tag="t", budget_s=0.05)
    c.run("baseline")
    proc = _report(checkout)
    assert (checkout / "progress.png").read_bytes() == b"\x89PNG the project's own figure"
    own = checkout / ".autoresearch" / "report"
    assert f"wrote {own / 'autoresearch-summary.md'}" in proc.stdout
    assert "progress.png" in proc.stderr and "tracked in git" in proc.stderr and str(own) in proc.stderr
    assert (own / "progress.png").read_bytes()[:4] == b"\x89PNG" and not (checkout / "autoresearch-summary.md").exists()
    assert _git(checkout, "status", "--porcelain") == ""
    _report(checkout)  # again: the tool's own files are rewritten in place, no new folders
    assert sorted(p.name for p in (checkout / ".autoresearch").iterdir() if p.name.startswith("report")) == ["report"]


def test_the_tools_own_report_is_rewritten_but_a_file_the_user_made_or_changed_is_not(toy_campaign, tmp_path):
    root = toy_campaign.paths.root
    toy_campaign.run("baseline")
    _report(root)
    first = (root / "progress.png").read_bytes()
    toy_campaign.run("again")
    _report(root)
    assert (root / "progress.png").read_bytes() != first  # its own file: updated in place
    (root / "autoresearch-summary.md").write_text("my notes\n")  # the user takes the name over
    proc = _report(root)
    assert (root / "autoresearch-summary.md").read_text() == "my notes\n"
    assert "changed since the tool wrote it" in proc.stderr
    assert (root / ".autoresearch" / "report" / "autoresearch-summary.md").exists()


def test_a_report_folder_with_the_users_files_gets_a_folder_of_the_tools_own(toy_campaign, tmp_path):
    toy_campaign.run("baseline")
    out = tmp_path / "share"
    out.mkdir()
    (out / "progress.png").write_bytes(b"mine")
    proc = _report(toy_campaign.paths.root, "--out", str(out))
    assert (out / "progress.png").read_bytes() == b"mine" and not (out / "autoresearch-summary.md").exists()
    assert f"wrote {out / 'autoresearch-report' / 'autoresearch-summary.md'}" in proc.stdout
    assert (out / "autoresearch-report" / "progress.png").read_bytes()[:4] == b"\x89PNG"
