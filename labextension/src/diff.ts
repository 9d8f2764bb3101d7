import { el } from './format';

// Python tokens, coloured with the theme's editor colours (train.py and its kin are Python)
const TOKEN = /(#.*$)|("""|'''|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|\b(\d[\d_]*(?:\.\d*)?(?:e[+-]?\d+)?)\b|\b(and|as|assert|async|await|break|class|continue|def|del|elif|else|except|False|finally|for|from|global|if|import|in|is|lambda|None|nonlocal|not|or|pass|raise|return|True|try|while|with|yield)\b/g;
const TOKEN_CLASSES = ['jp-mod-comment', 'jp-mod-string', 'jp-mod-number', 'jp-mod-keyword'];

/** Appends `code` to `parent` with Python comments, strings, numbers and keywords in spans. */
function appendHighlighted(parent: HTMLElement, code: string): void {
  let at = 0;
  for (const match of code.matchAll(TOKEN)) {
    const kind = match.slice(1).findIndex(group => group !== undefined);
    if (match.index! > at) {
      parent.appendChild(document.createTextNode(code.slice(at, match.index)));
    }
    parent.appendChild(el('span', TOKEN_CLASSES[kind], match[0]));
    at = match.index! + match[0].length;
  }
  if (at < code.length) {
    parent.appendChild(document.createTextNode(code.slice(at)));
  }
}

/** Returns the kind of a unified-diff line: file, hunk, add, del or context. */
function kindOf(line: string): string {
  if (line.startsWith('diff --git') || line.startsWith('+++ ') || line.startsWith('--- ') || line.startsWith('index ')) {
    return 'file';
  }
  return line.startsWith('@@') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : 'context';
}

/**
 * Returns a unified diff as a block of lines: old and new line numbers in two gutters,
 * additions and removals tinted, and the code of .py files syntax-coloured.
 */
export function diffBlock(diff: string, withLineNumbers = false): HTMLElement {
  const block = el('div', 'jp-Autoresearch-diff');
  block.classList.toggle('jp-mod-numbered', withLineNumbers);
  let oldLine = 0;
  let newLine = 0;
  let python = true;
  for (const line of diff.replace(/\n$/, '').split('\n')) {
    const kind = kindOf(line);
    const row = el('div', `jp-Autoresearch-diffLine jp-mod-${kind}`);
    if (withLineNumbers) {
      const shows = kind === 'context' || kind === 'add' || kind === 'del';
      row.append(
        el('span', 'jp-Autoresearch-gutter', shows && kind !== 'add' ? String(oldLine) : ''),
        el('span', 'jp-Autoresearch-gutter', shows && kind !== 'del' ? String(newLine) : '')
      );
    }
    const text = el('span', 'jp-Autoresearch-diffText');
    if (kind === 'file') {
      const name = /^(?:\+\+\+|---) (?:[ab]\/)?(.*)$/.exec(line)?.[1];
      if (name && name !== '/dev/null') {
        python = name.endsWith('.py');
      }
      text.textContent = line;
    } else if (kind === 'hunk') {
      const numbers = /^@@ -(\d+)(?:,\d+)? \+(\d+)/.exec(line);
      oldLine = numbers ? Number(numbers[1]) : oldLine;
      newLine = numbers ? Number(numbers[2]) : newLine;
      text.textContent = line;
    } else {
      text.appendChild(el('span', 'jp-Autoresearch-diffSign', line.slice(0, 1) || ' '));
      if (python) {
        appendHighlighted(text, line.slice(1));
      } else {
        text.appendChild(document.createTextNode(line.slice(1)));
      }
      oldLine += kind === 'add' ? 0 : 1;
      newLine += kind === 'del' ? 0 : 1;
    }
    row.appendChild(text);
    block.appendChild(row);
  }
  return block;
}
