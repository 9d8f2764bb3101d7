import { LabIcon } from '@jupyterlab/ui-components';

// A ratchet: a best-so-far staircase that only steps down, over scattered attempts.
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="6" cy="6" r="1.6"/>
    <circle cx="11" cy="9" r="1.6"/>
    <circle cx="16" cy="12.5" r="1.6"/>
    <circle cx="20" cy="9.5" r="1.6"/>
    <path d="M2 3h2v5h5v4h5v4h8v2H12v-4H7V10H2z"/>
    <path d="M2 20h20v2H2z"/>
  </g>
</svg>`;

export const autoresearchIcon = new LabIcon({
  name: 'autoresearch-magics:sidebar',
  svgstr
});
