import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import {
  APIError,
  getCurve,
  getExperiment,
  getResults,
  getStatus,
  listCampaigns
} from './api';
import {
  IAutoresearchModel,
  ICampaignStatus,
  ICampaignSummary,
  ICurve,
  IExperimentDetail,
  ILive,
  IResults,
  IWaitingProposal
} from './tokens';

const RUNNING_POLL_MS = 1000; // the runner rewrites live.json about once a second
const IDLE_POLL_MS = 3000;
const LIST_POLL_MS = 15000; // new campaigns appear rarely; the walk is the costliest call
const CURVE_POLL_MS = 2000; // a running experiment's curve, re-read at most this often
const MAX_BACKOFF_MS = 30000; // a failing server is asked at most this rarely

/** Returns the proposal the runner waits on, wherever this server version puts it. */
export function waitingProposal(status: ICampaignStatus | null): IWaitingProposal | null {
  const top = (status as { waiting_proposal?: IWaitingProposal | null } | null)?.waiting_proposal;
  return status?.running?.waiting_proposal ?? top ?? null;
}

/**
 * The sidebar's data, kept apart from its view. Two `Poll`s read the server: the campaign list
 * and the selected campaign's status (faster while an experiment runs). Both back off while the
 * server fails and stand by while the panel is hidden or the browser tab is in the background.
 */
export class CampaignModel implements IAutoresearchModel {
  campaigns: ICampaignSummary[] = [];
  selected: string | null = null;
  status: ICampaignStatus | null = null;
  results: IResults | null = null;
  experiment: number | null = null;
  /** The selected experiment's row, diff and log tail, once loaded. */
  detail: IExperimentDetail | null = null;
  /** Why the selected experiment's detail could not be read. */
  detailError = '';
  /** The last error of the campaign list or status, for the view to show ('' when none). */
  error = '';
  /** Set when the server records no curves (501): its message, and no more curve requests. */
  curvesUnavailable = '';
  /** Whether the campaign list has been read once. */
  listed = false;
  /** Highest memory seen for the running run while it trained (MB), or null. */
  peakRssMb: number | null = null;

  private curves = new Map<number, ICurve>();
  private curveAt = 0;
  private liveKey = '';
  private _active = false;
  private _changed = new Signal<IAutoresearchModel, void>(this);
  private _experimentSelected = new Signal<IAutoresearchModel, number | null>(this);
  private _experimentChanged = new Signal<this, void>(this);
  private listPoll: Poll;
  private statusPoll: Poll;

  constructor() {
    const standby = () => (this._active ? ('when-hidden' as const) : true);
    this.listPoll = new Poll({
      name: 'autoresearch:campaigns',
      factory: () => this.loadCampaigns(),
      frequency: { interval: LIST_POLL_MS, backoff: true, max: 4 * LIST_POLL_MS },
      standby
    });
    this.statusPoll = new Poll({
      name: 'autoresearch:status',
      factory: () => this.loadStatus(),
      frequency: { interval: IDLE_POLL_MS, backoff: true, max: MAX_BACKOFF_MS },
      standby
    });
  }

  get changed(): ISignal<IAutoresearchModel, void> {
    return this._changed;
  }

  get experimentSelected(): ISignal<IAutoresearchModel, number | null> {
    return this._experimentSelected;
  }

  /** Emitted when the selected experiment's detail or a curve the view shows changes. */
  get experimentChanged(): ISignal<this, void> {
    return this._experimentChanged;
  }

  /** The running experiment of the selected campaign, or null. */
  get live(): ILive | null {
    return this.status?.running ?? null;
  }

  /** Returns the last curve read for `experiment`, or null. */
  curveOf(experiment: number | null): ICurve | null {
    return experiment === null ? null : this.curves.get(experiment) ?? null;
  }

  /** Whether the panel is shown: the polls stand by while it is not. */
  set active(active: boolean) {
    this._active = active;
    if (active) {
      void this.refresh();
    }
  }

  /** Re-reads the campaign list and the selected campaign now. */
  async refresh(): Promise<void> {
    this.results = null; // re-read the table even if its row count did not change
    await this.loadCampaigns().catch(() => undefined);
    await this.loadStatus().catch(() => undefined);
  }

  selectCampaign(id: string | null): void {
    if (id === this.selected) {
      return;
    }
    this.selected = id;
    this.status = null;
    this.results = null;
    this.curves.clear();
    this.peakRssMb = null;
    this.liveKey = '';
    this.selectExperiment(null);
    this._changed.emit();
    void this.statusPoll.refresh();
  }

  selectExperiment(experiment: number | null): void {
    if (experiment === this.experiment && (experiment === null || this.detail)) {
      return;
    }
    this.experiment = experiment;
    this.detail = null;
    this.detailError = '';
    this._experimentSelected.emit(experiment);
    this._experimentChanged.emit();
    if (experiment !== null) {
      void this.loadDetail(experiment);
      void this.loadCurve(experiment);
    }
  }

  /** Selects the campaign holding `path` (relative to the server root): the innermost one. */
  follow(path: string): void {
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    let best: string | null = null;
    for (const { id } of this.campaigns) {
      const inside = id === '.' || dir === id || dir.startsWith(id + '/');
      if (inside && (best === null || best === '.' || id.length > best.length)) {
        best = id;
      }
    }
    if (best !== null) {
      this.selectCampaign(best);
    }
  }

  dispose(): void {
    this.listPoll.dispose();
    this.statusPoll.dispose();
    Signal.clearData(this);
  }

  private async loadCampaigns(): Promise<void> {
    try {
      this.campaigns = (await listCampaigns()).campaigns;
      this.listed = true;
    } catch (error) {
      this.error = `Cannot list campaigns: ${(error as Error).message}`;
      this._changed.emit();
      throw error; // the poll backs off
    }
    const ids = this.campaigns.map(c => c.id);
    if (this.selected === null || !ids.includes(this.selected)) {
      const next = (this.campaigns.find(c => c.running) ?? this.campaigns[0])?.id ?? null;
      this.selectCampaign(next);
    }
    this._changed.emit();
  }

  private async loadStatus(): Promise<void> {
    const id = this.selected;
    if (id === null) {
      return;
    }
    try {
      const status = await getStatus(id);
      if (id !== this.selected) {
        return; // the selection moved on while this was in flight
      }
      if (!this.results || this.results.rows.length !== status.runs) {
        const results = await getResults(id);
        if (id !== this.selected) {
          return;
        }
        this.results = results;
      }
      const before = this.status?.running ?? null;
      this.status = status;
      this.error = '';
      this.trackLive(before, status.running);
    } catch (error) {
      if (id === this.selected) {
        this.status = null;
        this.error = (error as Error).message;
      }
      throw error; // the poll backs off
    } finally {
      if (id === this.selected) {
        this._changed.emit();
      }
    }
  }

  /** Follows the running run: poll rate, peak memory while training, its live curve. */
  private trackLive(before: ILive | null, live: ILive | null): void {
    const interval = live ? RUNNING_POLL_MS : IDLE_POLL_MS;
    if (this.statusPoll.frequency.interval !== interval) {
      this.statusPoll.frequency = { interval, backoff: true, max: MAX_BACKOFF_MS };
    }
    if (before && (!live || live.experiment !== before.experiment)) {
      void this.loadCurve(before.experiment); // its final curve
      if (before.experiment === this.experiment) {
        void this.loadDetail(before.experiment); // now with its results row
      }
    }
    if (!live) {
      this.liveKey = '';
      this.peakRssMb = null;
      return;
    }
    const key = `${live.experiment}:${live.run}`;
    if (key !== this.liveKey) {
      this.liveKey = key;
      this.peakRssMb = null;
    }
    // memory only counts while the script trains: at start-up and after exit it reads a few MB
    const training = live.phase ? live.phase === 'training' : live.percent !== null;
    const rss = live.peak_rss_mb ?? (training ? live.rss_mb : null);
    if (rss !== null && rss !== undefined && rss > (this.peakRssMb ?? 0)) {
      this.peakRssMb = rss;
    }
    if (Date.now() - this.curveAt >= CURVE_POLL_MS) {
      void this.loadCurve(live.experiment);
    }
  }

  private async loadDetail(experiment: number): Promise<void> {
    const id = this.selected;
    if (id === null) {
      return;
    }
    try {
      const detail = await getExperiment(id, experiment);
      if (id === this.selected && experiment === this.experiment) {
        this.detail = detail;
      }
    } catch (error) {
      if (id === this.selected && experiment === this.experiment) {
        this.detailError = (error as Error).message;
      }
    }
    this._experimentChanged.emit();
  }

  private async loadCurve(experiment: number): Promise<void> {
    const id = this.selected;
    if (id === null || this.curvesUnavailable) {
      return;
    }
    this.curveAt = Date.now();
    try {
      const curve = await getCurve(id, experiment);
      if (id === this.selected) {
        this.curves.set(experiment, curve);
      }
    } catch (error) {
      if (error instanceof APIError && error.status === 501) {
        this.curvesUnavailable = error.message;
      } else {
        return; // a run without a log yet, or a transient failure: the next poll tries again
      }
    }
    this._experimentChanged.emit();
  }
}
