import { el } from './format';
import { IExperimentDetail } from './tokens';

/** Returns a <pre> whose diff lines are classed by kind, so additions and removals are coloured. */
function diffBlock(diff: string): HTMLElement {
  const pre = el('pre', 'jp-Autoresearch-diff');
  for (const line of diff.split('\n')) {
    const kind = line.startsWith('+++') || line.startsWith('---') ? 'file'
      : line.startsWith('+') ? 'add'
      : line.startsWith('-') ? 'del'
      : line.startsWith('@@') ? 'hunk'
      : '';
    pre.appendChild(el('span', kind ? `jp-mod-${kind}` : '', line + '\n'));
  }
  return pre;
}

/** Returns the view of one experiment: its row, its diff against its parent and its log tail. */
export function experimentDetail(detail: IExperimentDetail): HTMLElement {
  const box = el('div', 'jp-Autoresearch-detailBody');
  const row = detail.row;
  const summary = row
    ? `${row.status}${row.crash_reason ? ` (${row.crash_reason})` : ''}: ${row.description}`
    : 'no results row (the experiment did not finish)';
  box.appendChild(el('p', 'jp-Autoresearch-detailSummary', summary));
  box.appendChild(
    el('p', 'jp-Autoresearch-dim',
      `commit ${(detail.commit ?? '?').slice(0, 7)} · parent ${(detail.parent ?? '?').slice(0, 7)}`)
  );
  box.appendChild(el('h4', '', 'Diff against parent'));
  box.appendChild(
    detail.diff
      ? diffBlock(detail.diff + (detail.diff_truncated ? '\n… (diff cut here)' : ''))
      : el('p', 'jp-Autoresearch-dim', 'No change: a re-run of its parent.')
  );
  box.appendChild(el('h4', '', `Log tail (${detail.log_path})`));
  box.appendChild(
    detail.log_tail.length
      ? el('pre', 'jp-Autoresearch-log', detail.log_tail.join('\n'))
      : el('p', 'jp-Autoresearch-dim', 'No log.')
  );
  return box;
}
