/**
 * Shapes of the server's /autoresearch answers (see autoresearch_magics/server/payloads.py,
 * curves.py and proposals.py), and the token other plugins use to follow the sidebar's model.
 */
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

/** One campaign found under the server root. */
export interface ICampaignSummary {
  id: string; // folder relative to the server root; "." for the root itself
  name: string;
  tag?: string;
  metric?: string;
  direction?: 'min' | 'max';
  budget_s?: number;
  running?: number | null; // number of the running experiment
  error?: string;
}

/** A results row reduced to what status reports (baseline, best, latest). */
export interface IBrief {
  experiment: number | null;
  commit: string;
  value: number | null;
  status: Status;
  description: string;
  crash_reason: string;
}

export type Status = 'keep' | 'discard' | 'crash';

/** Where a run's wall time goes; only training advances the progress bar. */
export type Phase = 'start-up' | 'preparation' | 'training' | 'evaluation';

/** A proposal the runner waits on in approve mode: run it or skip it. */
export interface IWaitingProposal {
  experiment: number;
  description: string;
  diff: string;
}

/** What the running run's progress shows (core/phases.py live_progress). */
export interface ILiveProgress {
  phase: Phase | null;
  label: string;
  fraction: number | null; // share of the training budget done; null: not known
  training_s: number | null;
  text: string;
}

/** The running experiment, as the runner writes it to .autoresearch/live.json. */
export interface ILive {
  experiment: number;
  run: number;
  description: string;
  commit: string;
  budget_s: number;
  elapsed_s: number;
  training_fraction: number; // 0..1 of the budget
  step: number | null;
  percent: number | null;
  loss: number | null;
  remaining_s: number | null;
  rss_mb: number;
  tail: string[];
  phase?: Phase; // absent from runners that do not record phases
  training_seconds?: number;
  peak_rss_mb?: number;
  progress?: ILiveProgress; // the server's reading of the phases, the rule the notebook panel shows too
  waiting_proposal?: IWaitingProposal | null;
}

export interface ICampaignStatus {
  id: string;
  root: string; // absolute folder on the server machine
  tag: string;
  branch: string;
  current_branch: string | null;
  objective: string;
  metric: string;
  direction: 'min' | 'max';
  budget_s: number;
  timeout_s: number;
  keep_rule: string;
  stop: { reached: boolean; reason: string; progress: string };
  attempted: number;
  runs: number;
  counts: { keep: number; discard: number; crash: number };
  baseline: IBrief | null;
  best: IBrief | null;
  latest: IBrief | null;
  delta: number | null; // best minus baseline
  running: ILive | null;
  report: { name: string; exists: boolean }; // the report file in the campaign folder
}

export interface IResults {
  id: string;
  metric: string;
  direction: 'min' | 'max';
  columns: string[];
  rows: { [column: string]: string }[];
}

export interface IExperimentDetail {
  id: string;
  experiment: number;
  commit: string | null;
  parent: string | null;
  row: { [column: string]: string } | null;
  diff: string;
  diff_truncated: boolean;
  log_path: string;
  log_tail: string[];
}

/** One point of a loss curve. */
export interface ICurvePoint {
  training_seconds: number;
  step: number | null;
  loss: number;
}

/** An experiment's latest run's loss curve, and the best experiment's (null when it is the best). */
export interface ICurve {
  experiment: number;
  run: number | null;
  points: ICurvePoint[];
  best: { experiment: number; run: number | null; points: ICurvePoint[] } | null;
}

/**
 * The sidebar's state: the campaigns under the server root, the selected campaign's status and
 * results, and the selected experiment. Other plugins may follow it through the token.
 */
export interface IAutoresearchModel {
  readonly campaigns: ICampaignSummary[];
  readonly selected: string | null; // campaign id
  readonly status: ICampaignStatus | null;
  readonly results: IResults | null;
  readonly experiment: number | null; // the selected experiment of the selected campaign
  /** Emitted when the campaign list, the selection, the status or the results change. */
  readonly changed: ISignal<IAutoresearchModel, void>;
  /** Emitted with the experiment number when an experiment is selected (null: none). */
  readonly experimentSelected: ISignal<IAutoresearchModel, number | null>;
  selectCampaign(id: string | null): void;
  selectExperiment(experiment: number | null): void;
  refresh(): Promise<void>;
}

export const IAutoresearchModel = new Token<IAutoresearchModel>(
  'autoresearch-magics:IAutoresearchModel',
  'The Autoresearch sidebar model: selected campaign, its status, results and selected experiment.'
);

/** Command ids, shared by the plugin and the sidebar's buttons. */
export namespace CommandIDs {
  export const openNotebook = 'autoresearch:open-results-notebook';
  export const openConsole = 'autoresearch:open-results-console';
  export const openReport = 'autoresearch:open-report';
  export const stop = 'autoresearch:stop-experiment';
  export const refresh = 'autoresearch:refresh';
  export const openExperiment = 'autoresearch:open-experiment';
  export const runProposal = 'autoresearch:run-proposal';
  export const skipProposal = 'autoresearch:skip-proposal';
}
