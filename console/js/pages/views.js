// views.js -- the Views page: every view's state, applied position and lag (events, and
// seconds at its recent apply rate) with two lag charts (events, seconds); a failed view's error with the
// event it failed on; a rebuild (admin) with its progress; and for the selected view a
// form per named query, built from the query's parameters, and read-only SQL.

import {get, post, seg, askToken} from '../api.js';
import {h, uid, fmt, errorBox, rowsTable, sleep, facts} from '../dom.js';
import {lineChart} from '../chart.js';
import {eventDetail} from '../event.js';

const WINDOW_MS = 5 * 60 * 1000;
const lagHistory = new Map(); // view name -> [[t, lag in events, lag in seconds]]

function lagSeconds(v) {
	if (!v.lag) return 0;
	return v.events_per_s > 0 ? v.lag / v.events_per_s : NaN;
}

export function mount(main, arg) {
	const ctl = new AbortController();
	let fast = 0; // polls left at a short interval (after a rebuild starts)
	const list = h('div', {class: 'view-list'});
	const chart = lineChart({title: 'Lag in events, last 5 minutes', windowMs: WINDOW_MS, format: (v) => fmt.int(v), least: 10});
	const secChart = lineChart({title: 'Lag in seconds, last 5 minutes', windowMs: WINDOW_MS, format: (v) => (v ? fmt.seconds(v) : '0 s'), least: 1});
	chart.el.dataset.chart = 'lag-events';
	secChart.el.dataset.chart = 'lag-seconds';
	const selId = uid('view');
	const select = h('select', {id: selId, onchange: () => {
		location.hash = `#/views/${encodeURIComponent(select.value)}`;
	}});
	const work = h('div', {class: 'view-work'});
	main.append(h('h1', {text: 'Views'}), list, h('div', {class: 'charts'}, chart.el, secChart.el),
		h('section', {'aria-labelledby': 'vw-q'}, h('h2', {id: 'vw-q', text: 'Query a view'}),
			h('div', {class: 'field'}, h('label', {for: selId, text: 'View'}), select), work));
	const cards = new Map(); // name -> {el, update(v)}
	const failing = new Map(); // name -> position of the event shown

	function viewCard(name) {
		const state = h('span', {class: 'state'});
		const numbers = h('div');
		const progress = h('div', {class: 'rebuild-progress', hidden: true});
		const error = h('div');
		const msg = h('p', {class: 'status', role: 'status'});
		const rebuild = h('button', {type: 'button', class: 'secondary', 'aria-describedby': `rb-${name}`, onclick: () => startRebuild(name, msg)}, 'Rebuild');
		const el = h('article', {class: 'view-card', 'data-view': name, 'aria-labelledby': `vc-${name}`},
			h('h2', {id: `vc-${name}`}, h('a', {href: `#/views/${encodeURIComponent(name)}`, text: name}), ' ', state),
			numbers, progress, error,
			h('div', {class: 'buttons'}, rebuild, h('span', {id: `rb-${name}`, class: 'note', text: 'replays the log into a new copy, then swaps it in (admin)'})),
			msg);
		function update(v) {
			state.className = `state ${v.state}`;
			state.textContent = v.state.replace('_', ' ');
			const secs = lagSeconds(v);
			numbers.replaceChildren(facts([
				['Applied position', fmt.int(v.position)],
				['Lag', `${fmt.int(v.lag)} events${v.lag ? `, ${Number.isFinite(secs) ? fmt.seconds(secs) : 'not moving'}` : ''}`],
				['Apply rate', `${fmt.num(v.events_per_s, 1)} events/s`],
			]));
			if (v.state === 'rebuilding') {
				const head = v.position + v.lag;
				const done = v.rebuild_position || 0;
				const pct = head > 0 ? Math.min(100, (100 * done) / head) : 0;
				progress.hidden = false;
				progress.replaceChildren(h('label', {for: `pg-${name}`, text: `Rebuilding: ${fmt.int(done)} of ${fmt.int(head)} events (${pct.toFixed(0)}%)`}),
					h('progress', {id: `pg-${name}`, class: 'rebuild', max: String(Math.max(head, 1)), value: String(done)}));
				el.dataset.rebuilding = '1';
			} else if (el.dataset.rebuilding) {
				delete el.dataset.rebuilding;
				progress.hidden = true;
				msg.textContent = `Rebuilt: ${v.state.replace('_', ' ')} at position ${fmt.int(v.position)}.`;
				msg.dataset.done = '1';
			}
			if (v.state === 'failed' && v.error) {
				if (failing.get(name) !== v.error.position) {
					failing.set(name, v.error.position);
					const box = h('div', {class: 'error-box', role: 'alert'},
						h('p', {}, h('strong', {text: 'Failed '}), `at position ${fmt.int(v.error.position)} (${v.error.type}): ${v.error.message}`));
					error.replaceChildren(box);
					get(`/log?from=${v.error.position}&limit=1`, {signal: ctl.signal}).then((p) => {
						if (p.events.length) box.append(h('details', {}, h('summary', {text: 'The failing event'}), eventDetail(p.events[0])));
					}).catch(() => {});
				}
			} else if (v.load_error) {
				error.replaceChildren(h('p', {class: 'error', text: `Its file did not load: ${v.load_error}`}));
				failing.delete(name);
			} else {
				error.replaceChildren();
				failing.delete(name);
			}
		}
		return {el, update};
	}

	async function startRebuild(name, msg) {
		msg.textContent = '';
		delete msg.dataset.done;
		try {
			const v = await post(`/views/${seg(name)}/rebuild`);
			fast = 60;
			if (cards.has(name)) cards.get(name).update(v);
		} catch (e) {
			if (e.status === 403) {
				msg.replaceChildren(errorBox(e, h('button', {type: 'button', class: 'link', onclick: async () => {
					if (await askToken('Rebuilding needs a token with the admin scope.')) startRebuild(name, msg);
				}}, ' Use an admin token')));
			} else {
				msg.replaceChildren(errorBox(e));
			}
		}
	}

	function renderList(views) {
		const now = Date.now();
		for (const v of views) {
			if (!cards.has(v.name)) {
				const c = viewCard(v.name);
				cards.set(v.name, c);
				list.append(c.el);
			}
			cards.get(v.name).update(v);
			const hist = lagHistory.get(v.name) || [];
			hist.push([now, v.lag, lagSeconds(v)]);
			while (hist.length && hist[0][0] < now - WINDOW_MS) hist.shift();
			lagHistory.set(v.name, hist);
		}
		if (views.some((v) => v.state === 'rebuilding')) fast = Math.max(fast, 1);
		if (!views.length) list.replaceChildren(h('p', {text: 'This server has no views (kappa serve --views DIR).'}));
		chart.update(views.map((v, i) => ({label: v.name, cls: `s${(i % 4) + 1}`,
			points: lagHistory.get(v.name).map(([t, n]) => [t, n])})));
		// Seconds at the view's recent apply rate; a view that is behind and not moving has
		// no point (the legend says "no data yet" until it moves).
		secChart.update(views.map((v, i) => ({label: v.name, cls: `s${(i % 4) + 1}`,
			points: lagHistory.get(v.name).map(([t, , sec]) => [t, sec])})));
	}

	// ---- queries and SQL of the selected view ----
	function queryForm(view, q) {
		const fields = q.params.map((p) => {
			const id = uid(`q-${q.name}-${p.name}`);
			return {p, input: h('input', {id, name: p.name, type: 'text', required: !p.optional, autocomplete: 'off'}),
				label: h('label', {for: id, text: p.optional ? `${p.name} (optional)` : p.name})};
		});
		const out = h('div', {class: 'result', 'aria-live': 'polite'});
		const form = h('form', {class: 'query-form', 'data-query': q.name, onsubmit: async (e) => {
			e.preventDefault();
			const qs = new URLSearchParams();
			for (const f of fields) if (f.input.value !== '') qs.set(f.p.name, f.input.value);
			out.replaceChildren(h('p', {class: 'status', text: 'Running…'}));
			try {
				const r = await get(`/views/${seg(view)}/queries/${seg(q.name)}?${qs}`, {signal: ctl.signal});
				out.replaceChildren(h('p', {class: 'status', text: `${r.rows.length} row${r.rows.length === 1 ? '' : 's'} as of position ${r.position ?? '–'}`}),
					r.rows.length ? rowsTable(r.rows, `${q.name} results`) : null);
			} catch (err) {
				out.replaceChildren(errorBox(err));
			}
		}},
		h('fieldset', {}, h('legend', {}, h('code', {text: `${q.name}(${q.params.map((p) => p.name + (p.optional ? '?' : '')).join(', ')})`})),
			fields.map((f) => h('div', {class: 'field'}, f.label, f.input)),
			h('div', {class: 'buttons'}, h('button', {type: 'submit'}, 'Run'))),
		out);
		return form;
	}

	function sqlForm(view) {
		const id = uid('sql');
		const text = h('textarea', {id, rows: '4', spellcheck: 'false', required: true}, 'SELECT name FROM sqlite_schema WHERE type = \'table\' ORDER BY name');
		const out = h('div', {class: 'result', 'aria-live': 'polite'});
		return h('form', {class: 'sql-form', onsubmit: async (e) => {
			e.preventDefault();
			out.replaceChildren(h('p', {class: 'status', text: 'Running…'}));
			try {
				const r = await post(`/views/${seg(view)}/sql`, {sql: text.value}, {signal: ctl.signal});
				out.replaceChildren(h('p', {class: 'status', text: `${r.rows.length} row${r.rows.length === 1 ? '' : 's'}${r.truncated ? ' (truncated)' : ''} as of position ${r.position ?? '–'}`}),
					r.rows.length ? rowsTable(r.rows, 'SQL results') : null);
			} catch (err) {
				out.replaceChildren(errorBox(err));
			}
		}},
		h('fieldset', {}, h('legend', {text: 'Ad-hoc SQL (read-only, one statement)'}),
			h('label', {for: id, class: 'sr-only', text: 'SQL'}), text,
			h('div', {class: 'buttons'}, h('button', {type: 'submit'}, 'Run SQL'))),
		out);
	}

	async function showWork(view) {
		const v = await get(`/views/${seg(view)}`, {signal: ctl.signal});
		work.replaceChildren(
			v.queries.length ? h('div', {class: 'query-forms'}, v.queries.map((q) => queryForm(view, q)))
				: h('p', {text: 'This view has no named queries.'}),
			sqlForm(view));
	}

	(async () => {
		let first = true;
		while (!ctl.signal.aborted) {
			try {
				const {views} = await get('/views', {signal: ctl.signal});
				renderList(views);
				if (first) {
					first = false;
					const names = views.map((v) => v.name);
					select.replaceChildren(...names.map((n) => h('option', {value: n, text: n})));
					const pick = names.includes(arg) ? arg : names[0];
					if (pick) {
						select.value = pick;
						await showWork(pick);
					}
					main.setAttribute('aria-busy', 'false');
				}
			} catch (e) {
				if (ctl.signal.aborted) return;
				list.replaceChildren(errorBox(e));
				main.setAttribute('aria-busy', 'false');
			}
			await sleep(fast > 0 ? 250 : 2000, ctl.signal);
			if (fast > 0) fast -= 1;
		}
	})();
	return () => ctl.abort();
}
