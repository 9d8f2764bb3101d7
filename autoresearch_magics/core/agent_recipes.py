"""Command lines for coding-agent tools that have a non-interactive mode, for `--agent-cmd`.

Each recipe runs the tool once, headless, in the agent's scratch copy (its working directory),
lets it edit files there without asking, and hands it the prompt the way the tool reads one. The
agent proposer substitutes `{prompt_file}` (shell-quoted) and always feeds the prompt on standard
input as well; the prompt asks the agent to write its one-line description to
$AUTORESEARCH_DESCRIPTION_FILE or to print `description: ...`.

The flags were checked against each tool's own documentation (`docs`); tools change, so
`<tool> --help` on the installed version has the last word. Any other agent works the same way:
a command that edits the files in its current directory, given the prompt on standard input, in
{prompt_file} or in $AUTORESEARCH_PROMPT_FILE.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import CampaignError

STDIN_INSTRUCTION = "Carry out the task given on standard input."


@dataclass(frozen=True)
class AgentRecipe:
    """One tool's headless command line and how it receives the prompt."""

    name: str          # the executable
    command: str       # the --agent-cmd template ({prompt_file} is replaced)
    prompt_via: str    # "stdin", "argument" or "file"
    edits: str         # the flag that lets it edit files without asking
    docs: str          # where the flags are documented


RECIPES: dict[str, AgentRecipe] = {r.name: r for r in (
    AgentRecipe("claude", f'claude -p --permission-mode acceptEdits "{STDIN_INSTRUCTION}"', "stdin",
                "--permission-mode acceptEdits: file edits run without a permission prompt",
                "https://docs.anthropic.com/en/docs/claude-code/cli-reference"),
    AgentRecipe("codex", "codex exec --sandbox workspace-write -", "stdin",
                "--sandbox workspace-write: exec is read-only by default; this lets it edit its working directory",
                "https://developers.openai.com/codex/noninteractive"),
    AgentRecipe("gemini", f'gemini --approval-mode auto_edit -p "{STDIN_INSTRUCTION}"', "stdin",
                "--approval-mode auto_edit: file edits are approved automatically (-p text is appended to stdin)",
                "https://geminicli.com/docs/cli/headless"),
    AgentRecipe("aider", "aider --message-file {prompt_file} --yes-always --no-auto-commits train.py", "file",
                "--yes-always: every confirmation is answered yes (older releases call it --yes); list every "
                "editable file at the end",
                "https://aider.chat/docs/scripting.html"),
    AgentRecipe("copilot", 'copilot -p "$(cat {prompt_file})" --allow-all-tools -s', "argument",
                "--allow-all-tools: every tool runs without asking; -s prints only the agent's answer",
                "https://docs.github.com/en/copilot/reference/copilot-cli-reference/cli-programmatic-reference"),
)}


def recipe(name: str) -> AgentRecipe:
    """Returns the recipe of tool `name`; raises CampaignError naming the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise CampaignError(f"no agent recipe named {name!r}: use one of {', '.join(RECIPES)}, or give the full "
                            f"command line with --agent-cmd") from None


def agent_command(text: str) -> str:
    """Returns the command for `--agent-cmd TEXT`: a recipe's command when TEXT is a recipe's name
    (`--agent-cmd claude`), else TEXT itself."""
    text = text.strip()
    return RECIPES[text].command if text in RECIPES else text
