// chart.js -- a small line chart drawn as SVG (no library): one or more series of
// [time (ms), value] points over a fixed time window, a zero-based y axis with three
// labels, and a legend. Colours come from the stylesheet through the series' class.

import {h, svg, clear} from './dom.js';

const H = 180, L = 64, R = 12, T = 10, B = 24;

function niceMax(v, least) {
	if (!(v > least)) return least;
	const p = 10 ** Math.floor(Math.log10(v));
	for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
	return 10 * p;
}

// opts: {title, windowMs, format(v), least (the smallest top of the y axis, default 1)}.
// Returns {el, update(series)} where series is [{label, cls, points: [[t, v], ...]}]. The
// drawing is redone at the element's width on each update, so text keeps its size.
export function lineChart(opts) {
	const plot = svg('svg', {viewBox: `0 0 640 ${H}`, role: 'img', class: 'chart', 'aria-label': opts.title});
	const legend = h('ul', {class: 'legend'});
	const el = h('figure', {class: 'chart-box'}, h('figcaption', {text: opts.title}), plot, legend);
	const format = opts.format || ((v) => String(Math.round(v)));

	function update(series) {
		const now = Date.now(), from = now - opts.windowMs;
		const W = Math.max(240, Math.round(plot.getBoundingClientRect().width) || 640);
		plot.setAttribute('viewBox', `0 0 ${W} ${H}`);
		let max = 0;
		for (const s of series) for (const [t, v] of s.points) if (t >= from && Number.isFinite(v)) max = Math.max(max, v);
		max = niceMax(max, opts.least || 1);
		const x = (t) => L + ((t - from) / opts.windowMs) * (W - L - R);
		const y = (v) => H - B - (v / max) * (H - T - B);
		clear(plot);
		for (const f of [0, 0.5, 1]) {
			plot.append(svg('line', {class: 'grid', x1: L, x2: W - R, y1: y(max * f), y2: y(max * f)}));
			plot.append(svg('text', {class: 'tick', x: L - 6, y: y(max * f) + 4, 'text-anchor': 'end'}, format(max * f)));
		}
		const mins = Math.round(opts.windowMs / 60000);
		plot.append(svg('text', {class: 'tick', x: L, y: H - 6}, `${mins} min ago`));
		plot.append(svg('text', {class: 'tick', x: W - R, y: H - 6, 'text-anchor': 'end'}, 'now'));
		const summary = [];
		for (const s of series) {
			const pts = s.points.filter(([t, v]) => t >= from && Number.isFinite(v));
			if (pts.length > 1) {
				const d = pts.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('');
				plot.append(svg('path', {class: `line ${s.cls}`, d}));
			} else if (pts.length === 1) {
				plot.append(svg('circle', {class: `dot ${s.cls}`, cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3}));
			}
			const last = pts.length ? pts[pts.length - 1][1] : NaN;
			summary.push(`${s.label}: ${Number.isFinite(last) ? format(last) : 'no data yet'}`);
		}
		plot.setAttribute('aria-label', `${opts.title}. Latest: ${summary.join('; ')}`);
		legend.replaceChildren(...series.map((s, i) => h('li', {}, h('span', {class: `swatch ${s.cls}`, 'aria-hidden': 'true'}), summary[i])));
	}
	update([]);
	return {el, update};
}
