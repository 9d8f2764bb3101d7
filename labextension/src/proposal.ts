import { diffBlock } from './diff';
import { el, setText } from './format';
import { IWaitingProposal } from './tokens';

/** What the proposal view asks its owner to do. */
export interface IProposalActions {
  decide(proposal: IWaitingProposal, decision: 'run' | 'skip', reason: string): Promise<void>;
  open(proposal: IWaitingProposal): void;
}

/**
 * The proposal the runner waits on (approve mode): its description and diff, Run, Skip with an
 * optional reason, and a button to read the diff in the main area. Built once; a refresh that
 * shows the same proposal changes nothing, so a half-typed reason and a click survive it.
 */
export class ProposalView {
  readonly node = el('section', 'jp-Autoresearch-proposal');
  private title = el('strong', 'jp-Autoresearch-proposalTitle');
  private description = el('p', 'jp-Autoresearch-proposalDesc');
  private diffBox = el('div', 'jp-Autoresearch-diffBox');
  private reason = el('input', 'jp-Autoresearch-reason');
  private run = el('button', 'jp-Button jp-mod-styled jp-mod-accept jp-Autoresearch-runButton', 'Run');
  private skip = el('button', 'jp-Button jp-mod-styled jp-mod-reject jp-Autoresearch-skipButton', 'Skip');
  private message = el('p', 'jp-Autoresearch-dim');
  private proposal: IWaitingProposal | null = null;

  constructor(private actions: IProposalActions) {
    const head = el('div', 'jp-Autoresearch-proposalHead');
    const open = el('button', 'jp-Button jp-mod-minimal jp-Autoresearch-openButton', 'Open diff');
    open.title = 'Read the proposal’s diff in the main area';
    open.addEventListener('click', () => this.proposal && this.actions.open(this.proposal));
    head.append(this.title, open);
    this.reason.type = 'text';
    this.reason.placeholder = 'reason for skipping (optional)';
    this.reason.setAttribute('aria-label', 'Reason for skipping');
    this.run.title = 'Run this proposal as the next experiment';
    this.skip.title = 'Do not run it; the reason is recorded and the agent reads it';
    this.run.addEventListener('click', () => void this.decide('run'));
    this.skip.addEventListener('click', () => void this.decide('skip'));
    const buttons = el('div', 'jp-Autoresearch-proposalButtons');
    buttons.append(this.run, this.skip);
    this.node.append(head, this.description, this.diffBox, this.reason, buttons, this.message);
    this.node.hidden = true;
  }

  update(proposal: IWaitingProposal | null): void {
    this.node.hidden = !proposal;
    const same = proposal && this.proposal &&
      proposal.experiment === this.proposal.experiment &&
      proposal.description === this.proposal.description &&
      proposal.diff === this.proposal.diff;
    if (!proposal || same) {
      this.proposal = proposal ?? this.proposal;
      return;
    }
    this.proposal = proposal;
    this.reason.value = '';
    this.setBusy(false);
    setText(this.message, '');
    setText(this.title, `Proposal #${proposal.experiment} · waiting`);
    setText(this.description, proposal.description);
    this.diffBox.textContent = '';
    this.diffBox.appendChild(
      proposal.diff ? diffBlock(proposal.diff) : el('p', 'jp-Autoresearch-dim', 'No change to the files.')
    );
  }

  private setBusy(busy: boolean): void {
    this.run.disabled = busy;
    this.skip.disabled = busy;
  }

  private async decide(decision: 'run' | 'skip'): Promise<void> {
    const proposal = this.proposal;
    if (!proposal) {
      return;
    }
    this.setBusy(true);
    this.message.classList.remove('jp-mod-error');
    setText(this.message, decision === 'run' ? 'Sent: run.' : 'Sent: skip.');
    try {
      await this.actions.decide(proposal, decision, decision === 'skip' ? this.reason.value : '');
    } catch (error) {
      this.setBusy(false);
      this.message.classList.add('jp-mod-error');
      setText(this.message, (error as Error).message);
    }
  }
}
