import { el, experimentOf } from './format';
import { IResults } from './tokens';

interface IColumn {
  key: string; // results.tsv column, or '#' for the experiment number
  label: string;
  numeric: boolean;
}

type Row = { [column: string]: string };

/**
 * The results table: one row per results.tsv row, coloured by status, sortable by a click on a
 * header (again to reverse). A click on a row selects its experiment; a double click opens it
 * in the main area. Rows keep their elements across refreshes (results.tsv only grows), so a
 * click is never lost to a redraw.
 */
export class ResultsTable {
  readonly node = el('div', 'jp-Autoresearch-tableWrap');
  private results: IResults | null = null;
  private sortKey = '#';
  private ascending = true;
  private selected: number | null = null;
  private table = el('table', 'jp-Autoresearch-table');
  private head = this.table.createTHead().insertRow();
  private body = this.table.createTBody();
  private empty = el('p', 'jp-Autoresearch-empty', 'No experiments yet.');
  private headerKey = '';
  private rows: HTMLTableRowElement[] = []; // by position in results.tsv

  constructor(
    private onSelect: (experiment: number) => void,
    private onOpen: (experiment: number) => void
  ) {
    this.node.append(this.empty, this.table);
    this.body.addEventListener('click', event => this.rowEvent(event, this.onSelect));
    this.body.addEventListener('dblclick', event => this.rowEvent(event, this.onOpen));
  }

  update(results: IResults | null): void {
    if (results === this.results) {
      return;
    }
    this.results = results;
    this.render();
  }

  select(experiment: number | null): void {
    this.selected = experiment;
    for (const tr of this.rows) {
      tr.classList.toggle('jp-mod-selected', Number(tr.dataset.experiment) === experiment);
    }
  }

  private rowEvent(event: Event, then: (experiment: number) => void): void {
    const tr = (event.target as Element).closest?.('tr');
    const n = Number(tr?.dataset.experiment);
    if (tr && Number.isFinite(n)) {
      then(n);
    }
  }

  private columns(results: IResults): IColumn[] {
    return [
      { key: '#', label: '#', numeric: true },
      { key: 'commit', label: 'commit', numeric: false },
      { key: results.metric, label: results.metric, numeric: true },
      { key: 'status', label: 'status', numeric: false },
      { key: 'description', label: 'description', numeric: false }
    ];
  }

  private cell(row: Row, index: number, column: IColumn, metric: string): string {
    if (column.key === '#') {
      return String(experimentOf(row, index));
    }
    if (column.key === metric && row.status === 'crash') {
      return '–';
    }
    return row[column.key] ?? '';
  }

  private sortValue(row: Row, index: number, column: IColumn, metric: string): number | string {
    if (column.key === '#') {
      return experimentOf(row, index) + index * 1e-6; // repeats keep file order
    }
    if (column.key === metric && row.status === 'crash') {
      return NaN; // crashes sort last either way
    }
    const text = row[column.key] ?? '';
    return column.numeric ? parseFloat(text) : text.toLowerCase();
  }

  private render(): void {
    const results = this.results;
    const count = results?.rows.length ?? 0;
    this.empty.hidden = !results || count > 0;
    this.table.hidden = !count;
    if (!results) {
      return;
    }
    const columns = this.columns(results);
    this.renderHeader(columns);
    this.rows.splice(count).forEach(tr => tr.remove()); // another campaign, or a rewritten file
    results.rows.forEach((row, index) => this.renderRow(row, index, columns, results.metric));
    this.sort(columns);
  }

  private renderHeader(columns: IColumn[]): void {
    const key = columns.map(c => c.key).join('\t');
    if (key !== this.headerKey) {
      this.headerKey = key;
      this.head.textContent = '';
      for (const column of columns) {
        const th = el('th', column.numeric ? 'jp-mod-numeric' : '', column.label);
        th.dataset.column = column.key;
        th.title = `sort by ${column.label}`;
        th.addEventListener('click', () => {
          this.ascending = column.key === this.sortKey ? !this.ascending : true;
          this.sortKey = column.key;
          this.sort(this.columns(this.results!));
        });
        this.head.appendChild(th);
      }
    }
  }

  /** Updates (or creates) the row element at `index` to show `row`. */
  private renderRow(row: Row, index: number, columns: IColumn[], metric: string): void {
    let tr = this.rows[index];
    if (!tr) {
      tr = this.body.insertRow();
      this.rows.push(tr);
      for (const column of columns) {
        const td = el('td', column.numeric ? 'jp-mod-numeric' : '');
        td.dataset.column = column.key;
        tr.appendChild(td);
      }
    }
    const experiment = experimentOf(row, index);
    tr.className = `jp-Autoresearch-row jp-mod-${row.status}`;
    tr.classList.toggle('jp-mod-selected', experiment === this.selected);
    tr.dataset.experiment = String(experiment);
    tr.dataset.status = row.status;
    tr.title = [
      `#${experiment} ${row.status}: ${row.description}`,
      row.crash_reason ? `crash: ${row.crash_reason}` : '',
      `peak memory ${row.memory_gb} GB`,
      'click for its details, double-click to open its diff and log in the main area'
    ].filter(Boolean).join('\n');
    columns.forEach((column, i) => {
      const td = tr!.cells[i];
      const text = this.cell(row, index, column, metric);
      if (td.textContent !== text) {
        td.textContent = text;
      }
    });
  }

  /** Puts the rows in sort order, moving only when the order changed. */
  private sort(columns: IColumn[]): void {
    const results = this.results!;
    const sortColumn = columns.find(c => c.key === this.sortKey) ?? columns[0];
    for (const th of Array.from(this.head.cells)) {
      const current = th.dataset.column === sortColumn.key;
      th.classList.toggle('jp-mod-ascending', current && this.ascending);
      th.classList.toggle('jp-mod-descending', current && !this.ascending);
      if (current) {
        th.setAttribute('aria-sort', this.ascending ? 'ascending' : 'descending');
      } else {
        th.removeAttribute('aria-sort');
      }
    }
    const order = results.rows.map((row, index) => ({ row, index }));
    const sign = this.ascending ? 1 : -1;
    order.sort((a, b) => {
      const va = this.sortValue(a.row, a.index, sortColumn, results.metric);
      const vb = this.sortValue(b.row, b.index, sortColumn, results.metric);
      const na = typeof va === 'number' && Number.isNaN(va);
      const nb = typeof vb === 'number' && Number.isNaN(vb);
      if (na || nb) {
        return na && nb ? a.index - b.index : na ? 1 : -1;
      }
      return (va < vb ? -1 : va > vb ? 1 : a.index - b.index) * sign;
    });
    const wanted = order.map(({ index }) => this.rows[index]);
    const current = Array.from(this.body.rows);
    if (wanted.some((tr, i) => current[i] !== tr)) {
      this.body.append(...wanted);
    }
  }
}
