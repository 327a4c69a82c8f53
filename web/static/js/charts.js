// charts.js draws the dashboard's time series with uPlot (vendored, see
// vendor/uplot/SOURCE.md). A Chart fits its container's width, follows the
// light or dark colour scheme, and keeps its uPlot instance reachable as
// container.aviaryChart (the browser tests read the drawn data from it).

import uPlot from '../vendor/uplot/uPlot.esm.js';
import {h} from './dom.js';

const dark = window.matchMedia('(prefers-color-scheme: dark)');
dark.addEventListener('change', () => window.dispatchEvent(new Event('aviary:theme')));

// colors reads the chart colours of the current scheme from the style
// sheet's custom properties.
function colors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return {
    axis: v('--muted'),
    grid: v('--grid'),
    weight: v('--chart-weight'),
    weightFill: v('--chart-weight-fill'),
    canary: v('--chart-canary'),
    stable: v('--chart-stable'),
    threshold: v('--chart-threshold'),
    tolerance: v('--chart-tolerance'),
  };
}

// Chart is one uPlot chart. series: [{label, role, dash, stepped, fill}],
// where role picks the colour (weight, canary, stable, threshold,
// tolerance). format writes a y value; yRange fixes the y axis ([min,
// max]) or, when absent, fits the data (from 0).
export class Chart {
  constructor(container, {series, format, yRange, height = 200, empty = 'no data yet'}) {
    this.container = container;
    this.opts = {series, format, yRange, height};
    this.data = [[], ...series.map(() => [])];
    this.emptyNote = h('p', {class: 'chart-empty'}, empty);
    this.plotBox = h('div', {class: 'chart-plot'});
    container.replaceChildren(this.plotBox, this.emptyNote);
    container.aviaryChart = this;
    this.uplot = null;
    this.build();
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
    this.onTheme = () => this.build();
    window.addEventListener('aviary:theme', this.onTheme);
  }

  width() {
    return Math.max(200, Math.floor(this.container.clientWidth || 300));
  }

  build() {
    if (this.uplot) this.uplot.destroy();
    const c = colors();
    const {series, format, yRange, height} = this.opts;
    const fmt = (v) => (v === null || v === undefined ? '–' : format(v));
    const axis = {
      stroke: c.axis,
      grid: {stroke: c.grid, width: 1},
      ticks: {stroke: c.grid, width: 1},
    };
    const opts = {
      width: this.width(),
      height,
      cursor: {drag: {x: false, y: false}},
      legend: {live: true},
      scales: {
        x: {time: true},
        y: yRange
          ? {auto: false, range: yRange}
          : {range: (u, min, max) => [Math.min(0, min ?? 0), niceMax(max)]},
      },
      axes: [
        {...axis},
        {...axis, size: 64, values: (u, splits) => splits.map(fmt)},
      ],
      series: [
        {label: 'time', value: (u, v) => (v === null || v === undefined ? '–' : new Date(v * 1000).toLocaleTimeString())},
        ...series.map((s) => ({
          label: s.label,
          stroke: c[s.role],
          width: s.role === 'threshold' || s.role === 'tolerance' ? 1.5 : 2,
          dash: s.dash,
          fill: s.fill ? c.weightFill : undefined,
          spanGaps: false,
          points: {show: !s.stepped && !s.dash, size: 5},
          paths: s.stepped ? uPlot.paths.stepped({align: 1}) : undefined,
          value: (u, v) => fmt(v),
        })),
      ],
    };
    this.uplot = new uPlot(opts, this.data, this.plotBox);
    this.showEmpty();
  }

  // setData replaces the chart's data: [xs in seconds, ...one array per
  // series] (null for a missing value).
  setData(data) {
    this.data = data;
    this.uplot.setData(data);
    this.showEmpty();
  }

  showEmpty() {
    this.emptyNote.hidden = this.data[0].length > 0;
  }

  fit() {
    const w = this.width();
    if (this.uplot && w !== this.uplot.width) this.uplot.setSize({width: w, height: this.opts.height});
  }

  destroy() {
    this.resize.disconnect();
    window.removeEventListener('aviary:theme', this.onTheme);
    if (this.uplot) this.uplot.destroy();
    this.uplot = null;
    delete this.container.aviaryChart;
  }
}

// niceMax leaves some room above the largest value.
function niceMax(max) {
  if (!Number.isFinite(max) || max <= 0) return 1;
  const m = max * 1.15;
  const p = Math.pow(10, Math.floor(Math.log10(m)));
  return Math.ceil(m / p) * p;
}
