// overview.js -- the Overview page: the log's head, events/s and appends/s over the last
// minutes (a live chart from polling /metrics), fsync latency p50/p99 and group-commit
// size from the histograms, the log's disk use per segment (GET /log/segments, as a table
// with a bar per segment), views, uptime and version.

import {get, getText} from '../api.js';
import {h, fmt, facts, errorBox, sleep} from '../dom.js';
import {lineChart} from '../chart.js';
import * as prom from '../prom.js';

const WINDOW_MS = 5 * 60 * 1000;
const POLL_MS = 2000;
const SEGMENTS_EVERY = 5; // read /log/segments every 5th poll (10 s)
const SEGMENTS_SHOWN = 50; // the newest ones
// Readings kept while the tab is open, so the chart survives a visit to another page.
const history = [];

function rate(a, b, name) {
	const dt = (b.t - a.t) / 1000;
	const dv = prom.value(b.m, name) - prom.value(a.m, name);
	return dt > 0 && dv >= 0 ? dv / dt : NaN;
}

// The reading closest to 'ms' before the last one (for figures over the last minute).
function before(ms) {
	const last = history[history.length - 1];
	let pick = history[0];
	for (const r of history) if (last.t - r.t >= ms) pick = r;
	return pick === last ? null : pick;
}

// The log's segments, newest first, as a table with a bar (a <meter>) of each one's size.
function segmentsTable(r) {
	const shown = r.segments.slice(-SEGMENTS_SHOWN).reverse();
	const largest = Math.max(1, ...shown.map((g) => g.bytes));
	const when = (t) => (t ? t.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');
	const note = `${fmt.int(r.count)} segment${r.count === 1 ? '' : 's'}, ${fmt.bytes(r.bytes)} in all` +
		(r.count > shown.length ? `; the newest ${shown.length} shown` : '');
	const table = h('table', {class: 'rows segments'},
		h('caption', {text: `Disk used per segment: ${note}`}),
		h('thead', {}, h('tr', {}, ['First position', 'State', 'Events', 'Size', 'Bar', 'Newest event'].map((c) =>
			h('th', {scope: 'col', text: c, class: c === 'Bar' ? 'bar' : null})))),
		h('tbody', {}, shown.map((g) => h('tr', {'data-first': String(g.first_position)},
			h('td', {text: fmt.int(g.first_position)}),
			h('td', {}, h('span', {class: `state ${g.state === 'active' ? 'live' : ''}`, text: g.state})),
			h('td', {text: fmt.int(g.events)}),
			h('td', {class: 'size', text: fmt.bytes(g.bytes)}),
			h('td', {class: 'bar'}, h('meter', {min: '0', max: String(largest), value: String(g.bytes),
				'aria-label': `segment ${g.first_position}: ${fmt.bytes(g.bytes)}`})),
			h('td', {class: 'time', text: g.state === 'active' ? 'now (being written)' : when(g.newest_time)})))));
	return h('div', {class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Disk used per segment'}, table);
}

function card(label, value, note) {
	return h('div', {class: 'card'}, h('div', {class: 'label', text: label}), h('div', {class: 'value', text: value}),
		note ? h('div', {class: 'note', text: note}) : null);
}

export function mount(main) {
	const ctl = new AbortController();
	const cards = h('div', {class: 'cards', 'aria-live': 'off'});
	const chart = lineChart({title: 'Events and appends per second, last 5 minutes', windowMs: WINDOW_MS, format: (v) => fmt.num(v, 1)});
	const detail = h('div', {class: 'cols'});
	const segments = h('div', {class: 'segments-box'});
	const status = h('p', {class: 'status', role: 'status'});
	main.append(h('h1', {text: 'Overview'}), status, cards, chart.el,
		h('section', {'aria-labelledby': 'ov-segments'}, h('h2', {id: 'ov-segments', text: 'Log segments'}), segments), detail);
	let polls = 0;

	function render(viewsList) {
		const last = history[history.length - 1];
		const m = last.m;
		const prev = history.length > 1 ? history[history.length - 2] : null;
		const minute = before(60000);
		const evs = prev ? rate(prev, last, 'kappa_events_total') : NaN;
		const aps = prev ? rate(prev, last, 'kappa_appends_total') : NaN;
		// fsync latency and group-commit size over the last minute when there was traffic,
		// else since the start.
		let sync = prom.buckets(m, 'kappa_fsync_seconds');
		let group = prom.buckets(m, 'kappa_group_commit_appends');
		let span = 'since start';
		if (minute) {
			const ds = prom.delta(prom.buckets(minute.m, 'kappa_fsync_seconds'), sync);
			if (ds.length && ds[ds.length - 1].count > 0) {
				sync = ds;
				group = prom.delta(prom.buckets(minute.m, 'kappa_group_commit_appends'), group);
				span = 'last minute';
			}
		}
		const segs = prom.value(m, 'kappa_log_segments');
		const disk = prom.value(m, 'kappa_log_disk_bytes');
		const version = (prom.samples(m, 'kappa_build_info')[0] || {labels: {}}).labels.version || '?';
		const commits = prom.value(m, 'kappa_group_commits_total');
		const appends = prom.value(m, 'kappa_appends_total');
		cards.replaceChildren(
			card('Head position', fmt.int(prom.value(m, 'kappa_head_position')), 'the next event gets this position'),
			card('Events/s', fmt.num(evs, 1), `appends/s ${fmt.num(aps, 1)}`),
			card('fsync p50 / p99', `${fmt.seconds(prom.quantile(0.5, sync))} / ${fmt.seconds(prom.quantile(0.99, sync))}`, span),
			card('Group commit', `${fmt.num(prom.quantile(0.5, group), 1)} appends`,
				`median per commit (${span}); mean since start ${fmt.num(commits > 0 ? appends / commits : NaN, 1)}`),
			card('Log on disk', fmt.bytes(disk), `${fmt.int(segs)} segment${segs === 1 ? '' : 's'}, ${fmt.bytes(segs > 0 ? disk / segs : NaN)} per segment`),
			card('Uptime', fmt.duration(prom.value(m, 'kappa_uptime_seconds')), `kappa ${version}`),
		);
		chart.update([
			{label: 'events/s', cls: 's1', points: history.slice(1).map((r, i) => [r.t, rate(history[i], r, 'kappa_events_total')])},
			{label: 'appends/s', cls: 's2', points: history.slice(1).map((r, i) => [r.t, rate(history[i], r, 'kappa_appends_total')])},
		]);
		const vs = viewsList.map((v) => h('li', {},
			h('a', {href: `#/views/${encodeURIComponent(v.name)}`, text: v.name}), ' ',
			h('span', {class: `state ${v.state}`, text: v.state.replace('_', ' ')}),
			` at ${fmt.int(v.position)}, lag ${fmt.int(v.lag)}`));
		detail.replaceChildren(
			h('section', {'aria-labelledby': 'ov-views'}, h('h2', {id: 'ov-views', text: 'Views'}),
				vs.length ? h('ul', {class: 'plain'}, vs) : h('p', {text: 'No views.'})),
			h('section', {'aria-labelledby': 'ov-server'}, h('h2', {id: 'ov-server', text: 'Server'}), facts([
				['First position kept', fmt.int(prom.value(m, 'kappa_first_position'))],
				['Index position', fmt.int(prom.value(m, 'kappa_index_position'))],
				['Bytes written', fmt.bytes(prom.value(m, 'kappa_log_written_bytes_total'))],
				['Open connections', fmt.int(prom.value(m, 'kappa_http_open_connections'))],
				['Appends in flight', fmt.int(prom.value(m, 'kappa_http_appends_in_flight'))],
				['Subscribers', fmt.int(prom.value(m, 'kappa_subscribers'))],
			])));
	}

	(async () => {
		while (!ctl.signal.aborted) {
			try {
				const [text, vs] = await Promise.all([getText('/metrics', {signal: ctl.signal}), get('/views', {signal: ctl.signal})]);
				history.push({t: Date.now(), m: prom.parse(text)});
				while (history.length > 2 && history[0].t < Date.now() - WINDOW_MS - POLL_MS) history.shift();
				render(vs.views);
				if (polls++ % SEGMENTS_EVERY === 0) {
					const r = await get('/log/segments', {signal: ctl.signal});
					segments.replaceChildren(segmentsTable(r));
				}
				status.textContent = '';
				main.setAttribute('aria-busy', 'false');
			} catch (e) {
				if (ctl.signal.aborted) return;
				status.replaceChildren(errorBox(e));
				main.setAttribute('aria-busy', 'false');
			}
			await sleep(POLL_MS, ctl.signal);
		}
	})();
	return () => ctl.abort();
}
