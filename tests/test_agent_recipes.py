"""Agent recipes run against stand-in executables of the same name on the PATH, which read the prompt
the way the real tool does and refuse any flag it would not know; and the prompt they receive."""
import json
import shlex
import sys
import textwrap

import pytest

from autoresearch_magics import Campaign
from autoresearch_magics.core.agent import AgentProposer
from autoresearch_magics.core.agent_prompt import HISTORY_MAX_CHARS, build_prompt, tried_table
from autoresearch_magics.core.agent_recipes import RECIPES, agent_command, recipe
from autoresearch_magics.core.errors import CampaignError
from autoresearch_magics.core.notes import add_note, record_skip
from autoresearch_magics.core.results import full_columns

# Each stand-in parses its command line like the real tool's headless mode (unknown flags exit 2),
# gets the prompt where that tool gets it, and then behaves like an agent.
COMMON = textwrap.dedent("""
    import os, re, sys
    def fail(message):
        print(message, file=sys.stderr)
        sys.exit(2)
    def act(tool, prompt):
        if "autoresearch campaign" not in prompt:
            fail(f"{tool}: the prompt did not arrive")
        with open(os.environ["STAND_IN_LOG"], "a") as fh:
            fh.write(tool + "\\n" + prompt + "\\n----\\n")
        text = open("train.py").read()
        text = re.sub(r"^LEARNING_RATE = [0-9.e-]+", "LEARNING_RATE = 0.005", text, flags=re.M)
        open("train.py", "w").write(text)
        print(f"description: {tool} raised the learning rate to 0.005")
""")

STAND_INS = {
    "claude": """
        args = sys.argv[1:]
        if "-p" not in args and "--print" not in args:
            fail("claude: without -p this would open the interactive session")
        args = [a for a in args if a not in ("-p", "--print")]
        if args[:2] != ["--permission-mode", "acceptEdits"]:
            fail(f"claude: edits would wait for permission: {args}")
        query = args[2:]
        if len(query) > 1 or any(a.startswith("-") for a in query):
            fail(f"claude: unknown arguments {query}")
        act("claude", sys.stdin.read() + "\\n" + "".join(query))
    """,
    "codex": """
        args = sys.argv[1:]
        if args[:1] != ["exec"]:
            fail("codex: without exec this would open the interactive session")
        if args[1:3] != ["--sandbox", "workspace-write"]:
            fail("codex: exec is read-only by default: the edit would be refused")
        if args[3:] != ["-"]:
            fail(f"codex: expected the prompt '-' (read from stdin), got {args[3:]}")
        act("codex", sys.stdin.read())
    """,
    "gemini": """
        args = sys.argv[1:]
        if args[:2] != ["--approval-mode", "auto_edit"]:
            fail(f"gemini: edits would wait for approval: {args}")
        if len(args) != 4 or args[2] not in ("-p", "--prompt"):
            fail(f"gemini: without -p TEXT this would open the interactive session: {args}")
        act("gemini", sys.stdin.read() + "\\n" + args[3])  # -p is appended to stdin
    """,
    "aider": """
        import argparse
        parser = argparse.ArgumentParser(prog="aider")
        parser.add_argument("--message-file", "-f", required=True)
        parser.add_argument("--yes-always", action="store_true")
        parser.add_argument("--auto-commits", action=argparse.BooleanOptionalAction, default=True)
        parser.add_argument("files", nargs="*")
        opts = parser.parse_args()
        if not opts.yes_always:
            fail("aider: would wait for confirmations")
        if opts.files != ["train.py"]:
            fail(f"aider: train.py is not in the chat: {opts.files}")
        act("aider", open(opts.message_file).read())
    """,
    "copilot": """
        import argparse
        parser = argparse.ArgumentParser(prog="copilot")
        parser.add_argument("-p", required=True)
        parser.add_argument("--allow-all-tools", action="store_true")
        parser.add_argument("-s", action="store_true")
        opts = parser.parse_args()
        if not opts.allow_all_tools:
            fail("copilot: tools would wait for permission")
        act("copilot", opts.p)
    """,
}


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """Puts the stand-in executables first on the PATH; returns the file they log prompts to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STAND_INS.items():
        exe = bin_dir / name
        exe.write_text(f"#!{sys.executable}\n" + COMMON + textwrap.dedent(body))
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    log = tmp_path / "prompts.log"
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    return log


@pytest.fixture
def campaign(tmp_path):
    return Campaign.init(tmp_path / "c", tag="t", template="toy", budget_s=0.05)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_gets_the_prompt_to_its_tool_and_brings_back_its_edit_and_description(name, stand_ins, campaign):
    add_note(campaign.paths, "prefer learning-rate changes over width changes")
    proposal = AgentProposer(recipe(name).command, timeout_s=60).propose(campaign)
    assert proposal.description == f"{name} raised the learning rate to 0.005"
    assert "LEARNING_RATE = 0.005" in proposal.files["train.py"]
    logged = stand_ins.read_text()
    assert logged.startswith(name + "\n") and "prefer learning-rate changes over width changes" in logged
    assert (campaign.paths.root / "train.py").read_text().count("LEARNING_RATE = 0.003") == 1  # untouched


def test_a_stand_in_refuses_a_wrong_command_shape(stand_ins, campaign):
    from autoresearch_magics.core.proposers import ProposalError
    with pytest.raises(ProposalError, match="exited with code 2"):
        AgentProposer("codex exec -", timeout_s=60).propose(campaign)  # read-only: no edit allowed


def test_a_recipe_name_stands_for_its_command_and_unknown_names_say_which_exist():
    assert agent_command(" claude ") == RECIPES["claude"].command
    assert agent_command("my-agent --fast") == "my-agent --fast"
    with pytest.raises(CampaignError, match="claude, codex, gemini, aider, copilot"):
        recipe("cursor")
    for r in RECIPES.values():
        assert shlex.split(r.command)[0] == r.name and r.docs.startswith("https://")


# -- the prompt --------------------------------------------------------------------------------------

def test_the_prompt_carries_objective_stop_rules_branch_notes_skips_history_and_curves(campaign):
    campaign.update_stop_rules(max_experiments=40, target=0.9)
    campaign.run("baseline")
    add_note(campaign.paths, "keep the model under 1M parameters")
    record_skip(campaign.paths, "wider model", "memory is the limit on this machine", experiment=2)
    prompt = build_prompt(campaign, campaign.paths.root, curve_summary="exp 1: loss still falling at the end")
    assert "Objective: minimise val_bpb; each run trains for 0.05 s." in prompt
    assert "1/40 attempted" in prompt and "target val_bpb <= 0.9" in prompt
    assert "Branch: autoresearch/t" in prompt
    assert "keep the model under 1M parameters" in prompt
    assert "#2 'wider model': memory is the limit on this machine" in prompt
    assert "## Experiments already tried (1 in all" in prompt and "# Kept" in prompt
    assert "## Training curves\nexp 1: loss still falling at the end" in prompt
    assert "## Research charter (program.md)" in prompt


def test_a_long_campaigns_history_is_bounded_with_kept_steps_then_closest_misses(campaign):
    rows = ["\t".join(full_columns("val_bpb"))]
    for n in range(1, 601):
        status = "keep" if n % 50 == 1 else "crash" if n % 7 == 0 else "discard"
        value = 0.0 if status == "crash" else (2.0 - n / 1000 if status == "keep" else 2.0 + (n % 97) / 100)
        cells = {"commit": f"{n:07x}", "val_bpb": f"{value:.6f}", "memory_gb": "0.0", "status": status,
                 "description": f"idea number {n} " + "x" * 120, "experiment": str(n),
                 "crash_reason": "out of memory" if status == "crash" else ""}
        rows.append("\t".join(cells.get(c, "") for c in full_columns("val_bpb")))
    campaign.paths.results.write_text("\n".join(rows) + "\n")
    c = Campaign.open(campaign.paths.root)
    table = tried_table(c)
    assert len(table) <= HISTORY_MAX_CHARS + 200
    lines = table.splitlines()
    kept_at, misses_at = lines.index("# Kept (each a step of the ratchet)"), lines.index("# Closest misses (discarded)")
    assert kept_at < misses_at
    kept = [int(l.split("\t")[0]) for l in lines[kept_at + 1:misses_at]]
    assert kept == [n for n in range(1, 601) if n % 50 == 1]
    misses = [float(l.split("\t")[1]) for l in lines[misses_at + 1:] if l[:1].isdigit()]
    assert misses and misses == sorted(misses) and misses[0] == 2.0  # the closest to the best first
    assert lines[-1].startswith("# Not listed: ") and "discard" in lines[-1]
    prompt = build_prompt(c, c.paths.root)
    assert len(prompt) < 20_000 and "(600 in all; most relevant first)" in prompt
