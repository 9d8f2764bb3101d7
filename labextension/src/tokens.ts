/**
 * Shapes of the server's /autoresearch answers (see autoresearch_magics/server/payloads.py).
 */

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

/** Command ids, shared by the plugin and the sidebar's buttons. */
export namespace CommandIDs {
  export const openNotebook = 'autoresearch:open-results-notebook';
  export const openConsole = 'autoresearch:open-results-console';
  export const openReport = 'autoresearch:open-report';
  export const stop = 'autoresearch:stop-experiment';
  export const refresh = 'autoresearch:refresh';
}
