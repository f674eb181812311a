/** The sidebar icon: a small flow graph (three nodes, two edges). */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="6" r="3"/>
    <circle cx="5" cy="18" r="3"/>
    <circle cx="19" cy="12" r="3"/>
    <path d="M7.6 7.3 16.4 10.7l-.7 1.8L6.9 9.1zM6.9 14.9l8.8-3.4.7 1.8-8.8 3.4z"/>
  </g>
</svg>`;

export const kernelflowIcon = new LabIcon({ name: 'kernelflow:runs', svgstr: svg });
