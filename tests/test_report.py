"""The campaign report: a Markdown summary with kept steps, failures, crashes and next steps."""
import subprocess
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
