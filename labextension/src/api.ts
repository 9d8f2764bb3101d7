import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  ICampaignStatus,
  ICampaignSummary,
  ICurve,
  IExperimentDetail,
  IResults
} from './tokens';

/** An answer other than 2xx, carrying the server's message (it names the fix). */
export class APIError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

/** Returns the JSON answer of an /autoresearch route. */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'autoresearch', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: keep the text for the message
  }
  if (!response.ok) {
    throw new APIError(response.status, data?.message ?? String(data));
  }
  return data as T;
}

/** Returns the route of one campaign; the root campaign (id ".") has no id segment. */
export function campaignPath(id: string, route: string): string {
  const encoded =
    id === '.' ? '' : id.split('/').map(encodeURIComponent).join('/');
  return URLExt.join('campaigns', encoded, route);
}

export function listCampaigns(): Promise<{ campaigns: ICampaignSummary[] }> {
  return requestAPI('campaigns');
}

export function getStatus(id: string): Promise<ICampaignStatus> {
  return requestAPI(campaignPath(id, 'status'));
}

export function getResults(id: string): Promise<IResults> {
  return requestAPI(campaignPath(id, 'results'));
}

/** Returns one experiment's row, diff and log tail (the server's default number of log lines). */
export function getExperiment(
  id: string,
  experiment: number
): Promise<IExperimentDetail> {
  return requestAPI(campaignPath(id, `experiments/${experiment}`));
}

/** Returns an experiment's loss curve and the best's; 501 when the server records no curves. */
export function getCurve(id: string, experiment: number): Promise<ICurve> {
  return requestAPI(campaignPath(id, `experiments/${experiment}/curve`));
}

/** Answers the proposal the runner waits on; `experiment` guards against a proposal that moved on. */
export function decideProposal(
  id: string,
  experiment: number,
  decision: 'run' | 'skip',
  reason = ''
): Promise<{ written: boolean }> {
  return requestAPI(campaignPath(id, 'proposal'), {
    method: 'POST',
    body: JSON.stringify({ decision, reason, experiment })
  });
}

export function requestStop(id: string): Promise<{ requested: boolean }> {
  return requestAPI(campaignPath(id, 'stop'), { method: 'POST' });
}
