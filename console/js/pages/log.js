// log.js -- the Log page: a live tail of the log (/subscribe, catch-up from the last 100
// events, then live), with pause, filters by event type and stream prefix (applied by the
// server), and an event's details on click.

import {get, subscribe} from '../api.js';
import {h, uid, errorBox} from '../dom.js';
import {eventsTable, eventDetail} from '../event.js';

const BACKLOG = 100;

export function mount(main) {
	let ctl = null;
	let paused = false;
	let held = [];
	let seen = 0;
	const typesId = uid('types'), prefixId = uid('prefix');
	const types = h('input', {id: typesId, type: 'text', placeholder: 'PostCreated,UserFollowed', autocomplete: 'off'});
	const prefix = h('input', {id: prefixId, type: 'text', placeholder: 'user-', autocomplete: 'off'});
	const pause = h('button', {type: 'button', 'aria-pressed': 'false', onclick: togglePause}, 'Pause');
	const state = h('p', {class: 'status', role: 'status', 'aria-live': 'polite'});
	const details = h('section', {class: 'detail-pane', 'aria-labelledby': 'log-detail', tabindex: '-1'},
		h('h2', {id: 'log-detail', text: 'Event'}), h('p', {class: 'hint', text: 'Pick an event to see it whole.'}));
	const table = eventsTable('Events, newest first', (ev) => {
		details.replaceChildren(h('h2', {id: 'log-detail', text: `Event ${ev.position}`}), eventDetail(ev));
		details.focus();
	});
	const form = h('form', {class: 'filters', onsubmit: (e) => {
		e.preventDefault();
		start();
	}},
	h('div', {class: 'field'}, h('label', {for: typesId, text: 'Event types (comma-separated)'}), types),
	h('div', {class: 'field'}, h('label', {for: prefixId, text: 'Stream prefix'}), prefix),
	h('div', {class: 'buttons'}, h('button', {type: 'submit'}, 'Apply filter'), pause,
		h('button', {type: 'button', class: 'secondary', onclick: () => table.set([])}, 'Clear')));
	main.append(h('h1', {text: 'Log'}), form, state, h('div', {class: 'split'}, h('section', {'aria-label': 'Live tail'}, table.el), details));

	function showState(s, detail) {
		const what = s === 'live' ? (paused ? `paused (${held.length} new held)` : 'live') : s;
		state.replaceChildren(h('span', {class: `dot-state ${s}`, 'aria-hidden': 'true'}), ` ${what} · ${seen} events received`);
		if (s === 'error') state.append(errorBox(detail && detail.message ? detail : new Error(JSON.stringify(detail))));
		state.dataset.state = s;
	}

	function togglePause() {
		paused = !paused;
		pause.setAttribute('aria-pressed', String(paused));
		pause.textContent = paused ? 'Resume' : 'Pause';
		if (!paused) {
			for (const ev of held) table.add(ev, true);
			held = [];
		}
		showState(state.dataset.state || 'live');
	}

	async function start() {
		if (ctl) ctl.abort();
		ctl = new AbortController();
		const signal = ctl.signal;
		table.set([]);
		held = [];
		seen = 0;
		main.setAttribute('aria-busy', 'true');
		try {
			const page = await get('/log?from=0&limit=0', {signal});
			const from = Math.max(0, page.head - BACKLOG);
			main.setAttribute('aria-busy', 'false');
			await subscribe({from, types: types.value.replace(/\s+/g, ''), stream_prefix: prefix.value}, (ev) => {
				seen += 1;
				if (paused) held.push(ev);
				else table.add(ev, true);
				showState('live');
			}, (s, d) => {
				showState(s, d);
				main.setAttribute('aria-busy', 'false');
			}, signal);
		} catch (e) {
			if (signal.aborted) return;
			main.setAttribute('aria-busy', 'false');
			state.replaceChildren(errorBox(e));
		}
	}
	start();
	return () => ctl && ctl.abort();
}
