"""Honest verdicts: a re-run of the best's code is never an improvement; unfair machine shares are caught."""
from autoresearch_magics.core.campaign import Campaign
from autoresearch_magics.core.keep_rules import Decision, StrictRule
from autoresearch_magics.core.verdict_checks import load_fairness, remeasure_decision, same_code_as


def _files(campaign, ref):
    return {path: campaign.ledger.read_file(ref, path) for path in campaign.config.editable}


def test_a_commit_whose_editable_files_equal_the_best_is_a_remeasurement_not_a_keep(tmp_path):
    campaign = Campaign.init(tmp_path / "c", tag="t1", template="toy")
    ledger, train = campaign.ledger, campaign.paths.root / "train.py"
    best = ledger.tip()
    original = train.read_text()
    train.write_text(original.replace("WIDTH = 128", "WIDTH = 256"))
    changed = ledger.commit_files(campaign.config.editable, "wider")
    train.write_text(original)
    reverted = ledger.commit_files(campaign.config.editable, "back to the best's code")
    assert reverted and reverted != best  # a new commit, the same code
    assert same_code_as(_files(campaign, best), _files(campaign, reverted))
    assert not same_code_as(_files(campaign, best), _files(campaign, changed))
    assert not same_code_as({"train.py": "x"}, {"train.py": "x", "model.py": "y"})
    # the strict rule alone would keep a luckier measurement of the same code; the check overrides it
    luckier = StrictRule().decide(campaign, [0.99], {"value": 1.0})
    assert luckier.status == "keep"
    verdict = remeasure_decision(1, [0.99])
    assert verdict.status == "discard" and "same code as the best (experiment 1)" in verdict.evidence


def test_a_keep_won_with_more_of_the_machine_is_rerun_then_never_kept():
    # the observed case: a re-run of the best on a quieter machine got twice the steps
    check = load_fairness(0.95, 0.55, status="keep", reruns_left=1)
    assert not check.fair and check.action == "rerun" and check.rerun == "best"
    assert "machine share 0.95 against the best's 0.55" in check.evidence
    marked = load_fairness([0.95, 0.9], 0.55, status="keep", reruns_left=0)
    assert marked.action == "mark"
    verdict = marked.apply(Decision("keep", "3.355000 vs best 3.415000"))
    assert verdict.status == "discard" and verdict.evidence.startswith("not kept: unfair comparison")


def test_a_discard_suffered_with_less_of_the_machine_is_rerun_and_verdicts_against_the_load_stand():
    check = load_fairness(0.4, 0.9, status="discard")
    assert not check.fair and check.action == "rerun" and check.rerun == "candidate"
    assert load_fairness(0.4, 0.9, status="keep").fair       # won despite less machine
    assert load_fairness(0.95, 0.5, status="discard").fair   # lost despite more machine
    assert load_fairness(0.8, 0.9, status="keep").fair       # within the allowed gap
    assert load_fairness(None, 0.9, status="keep").evidence == "machine share not measured"
    kept = Decision("keep", "gain")
    assert load_fairness(0.8, 0.9, status="keep").apply(kept) is kept
