import { durationText } from './format';
import { ILive, Phase } from './tokens';

/** What the running experiment's progress bar and its two lines of text show. */
export interface IProgressView {
  label: string; // the phase, or "running" when the runner records none
  fraction: number | null; // share of the training budget done; null: not known (bar undetermined)
  time: string;
  facts: string[];
}

const LABELS: { [phase in Phase]: string } = {
  'start-up': 'starting up',
  preparation: 'preparing data',
  training: 'training',
  evaluation: 'evaluating'
};

function clamp(x: number): number {
  return Math.min(Math.max(x, 0), 1);
}

/**
 * Returns the progress of a running experiment. The bar advances with training time only: it
 * stays empty while the run starts up or prepares data, and is full while it evaluates. A runner
 * that records no phases gives the script's own progress, or an undetermined bar until the
 * script prints a progress line (wall time during start-up would be a false reading).
 */
export function progressOf(live: ILive, peakRssMb: number | null): IProgressView {
  const budget = live.budget_s;
  const trained = live.training_seconds ?? (live.percent !== null ? (live.percent / 100) * budget : null);
  let fraction: number | null;
  let time: string;
  if (live.phase === 'training' || (!live.phase && trained !== null)) {
    fraction = clamp(trained !== null ? trained / Math.max(budget, 1e-9) : live.training_fraction);
    time = `${durationText(fraction * budget)} of ${durationText(budget)} training (${(100 * fraction).toFixed(0)}%)`;
  } else if (live.phase === 'evaluation') {
    fraction = 1;
    time = `training done (${durationText(trained ?? budget)}), evaluating`;
  } else if (live.phase) {
    fraction = 0;
    time = `${LABELS[live.phase]}: ${durationText(live.elapsed_s)} so far, before the ${durationText(budget)} of training`;
  } else {
    fraction = null;
    time = `${durationText(live.elapsed_s)} since start; ${durationText(budget)} training budget`;
  }
  let label = live.phase ? LABELS[live.phase] : 'running';
  if (live.progress) {
    // the server computes it with the notebook panel's rule: both show the same bar
    ({ fraction, text: time, label } = live.progress);
  }
  const facts: string[] = [];
  if (live.loss !== null) {
    facts.push(`loss ${live.loss.toFixed(4)}`);
  }
  if (live.step !== null) {
    facts.push(`step ${live.step}`);
  }
  if (peakRssMb !== null && peakRssMb > 0) {
    facts.push(`peak ${peakRssMb.toFixed(0)} MB`);
  }
  facts.push(`${durationText(live.elapsed_s)} wall`);
  return { label, fraction, time, facts };
}
