/** Creating SVG elements, shared by the charts. */

const SVG = 'http://www.w3.org/2000/svg';

/** Returns an SVG element with attributes and optional text. */
export function svgNode(
  tag: string,
  attrs: { [name: string]: string | number },
  text?: string
): SVGElement {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    n.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    n.textContent = text;
  }
  return n;
}

/** Returns the drawable width inside `box` (its width less its horizontal padding). */
export function innerWidth(box: HTMLElement, fallback = 240): number {
  const style = getComputedStyle(box);
  const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return Math.floor(inner || fallback);
}
