import { el, experimentOf } from './format';
import { IResults } from './tokens';

interface IColumn {
  key: string; // results.tsv column, or '#' for the experiment number
  label: string;
  numeric: boolean;
}

type Row = { [column: string]: string };

/**
 * The results table: one row per results.tsv row, coloured by status, sortable by a click
 * on a header (again to reverse); a click on a row reports its experiment number.
 */
export class ResultsTable {
  readonly node = el('div', 'jp-Autoresearch-tableWrap');
  private results: IResults | null = null;
  private sortKey = '#';
  private ascending = true;
  private selected: number | null = null;

  constructor(private onSelect: (experiment: number) => void) {}

  update(results: IResults): void {
    this.results = results;
    this.render();
  }

  select(experiment: number | null): void {
    this.selected = experiment;
    for (const tr of Array.from(this.node.querySelectorAll('tbody tr'))) {
      const n = Number((tr as HTMLElement).dataset.experiment);
      tr.classList.toggle('jp-mod-selected', n === experiment);
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
    this.node.textContent = '';
    if (!results) {
      return;
    }
    if (!results.rows.length) {
      this.node.appendChild(el('p', 'jp-Autoresearch-empty', 'No experiments yet.'));
      return;
    }
    const columns = this.columns(results);
    const sortColumn = columns.find(c => c.key === this.sortKey) ?? columns[0];
    const table = el('table', 'jp-Autoresearch-table');
    const head = table.createTHead().insertRow();
    for (const column of columns) {
      const th = el('th', column.numeric ? 'jp-mod-numeric' : '', column.label);
      th.dataset.column = column.key;
      th.title = `sort by ${column.label}`;
      if (column === sortColumn) {
        th.classList.add(this.ascending ? 'jp-mod-ascending' : 'jp-mod-descending');
        th.setAttribute('aria-sort', this.ascending ? 'ascending' : 'descending');
      }
      th.addEventListener('click', () => {
        this.ascending = column.key === this.sortKey ? !this.ascending : true;
        this.sortKey = column.key;
        this.render();
      });
      head.appendChild(th);
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
    const body = table.createTBody();
    for (const { row, index } of order) {
      const tr = body.insertRow();
      const experiment = experimentOf(row, index);
      tr.className = `jp-Autoresearch-row jp-mod-${row.status}`;
      tr.dataset.experiment = String(experiment);
      tr.dataset.status = row.status;
      tr.title = [
        `#${experiment} ${row.status}: ${row.description}`,
        row.crash_reason ? `crash: ${row.crash_reason}` : '',
        `peak memory ${row.memory_gb} GB`,
        'click for its diff and log'
      ].filter(Boolean).join('\n');
      tr.classList.toggle('jp-mod-selected', experiment === this.selected);
      for (const column of columns) {
        const td = el('td', column.numeric ? 'jp-mod-numeric' : '', this.cell(row, index, column, results.metric));
        td.dataset.column = column.key;
        tr.appendChild(td);
      }
      tr.addEventListener('click', () => {
        this.select(experiment);
        this.onSelect(experiment);
      });
    }
    this.node.appendChild(table);
  }
}
