// streams.js -- the Streams page: look a stream up (GET /streams/{s}/info: last version,
// position, event count, the uniqueness claims it holds, by id), ask whether it holds a
// given claim key (?claim=KEY: kappa keeps keys only as keyed hashes, so a key can be
// checked but not listed), and page through its events (GET /streams/{s}), oldest or
// newest first.

import {get, seg} from '../api.js';
import {h, uid, fmt, facts, errorBox} from '../dom.js';
import {eventsTable, eventDetail} from '../event.js';

const PAGE = 25;

export function mount(main, arg) {
	const ctl = new AbortController();
	const nameId = uid('stream'), dirId = uid('dir');
	const name = h('input', {id: nameId, type: 'text', required: true, maxlength: '200', autocomplete: 'off', placeholder: 'user-42', value: arg || ''});
	const newest = h('input', {id: dirId, type: 'checkbox'});
	const info = h('section', {'aria-labelledby': 'st-info', class: 'stream-info'});
	const nav = h('div', {class: 'buttons pager'});
	const details = h('section', {class: 'detail-pane', 'aria-labelledby': 'st-detail', tabindex: '-1'},
		h('h2', {id: 'st-detail', text: 'Event'}), h('p', {class: 'hint', text: 'Pick an event to see it whole.'}));
	const table = eventsTable('Events of the stream', (ev) => {
		details.replaceChildren(h('h2', {id: 'st-detail', text: `Event ${ev.position}`}), eventDetail(ev));
		details.focus();
	}, PAGE);
	const form = h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
		e.preventDefault();
		if (name.value.trim()) location.hash = `#/streams/${encodeURIComponent(name.value.trim())}`;
	}},
	h('div', {class: 'field'}, h('label', {for: nameId, text: 'Stream'}), name),
	h('div', {class: 'field check'}, newest, h('label', {for: dirId, text: 'Newest first'})),
	h('div', {class: 'buttons'}, h('button', {type: 'submit'}, 'Look up')));
	main.append(h('h1', {text: 'Streams'}), form, info, h('div', {class: 'split'}, h('section', {'aria-label': 'Events'}, nav, table.el), details));

	const stream = (arg || '').trim();
	const pages = []; // from_version of the pages before this one
	let from = null;

	async function load(fromVersion) {
		const dir = newest.checked ? 'backward' : 'forward';
		let q = `limit=${PAGE}&direction=${dir}`;
		if (fromVersion !== null && fromVersion !== undefined) q += `&from_version=${fromVersion}`;
		const page = await get(`/streams/${seg(stream)}?${q}`, {signal: ctl.signal});
		from = fromVersion;
		table.set(page.events);
		const more = page.events.length === PAGE && page.next_version !== null;
		nav.replaceChildren(
			h('button', {type: 'button', disabled: !pages.length, onclick: () => load(pages.pop()).catch(show)}, newest.checked ? 'Newer' : 'Previous page'),
			h('button', {type: 'button', disabled: !more, onclick: () => {
				pages.push(from);
				load(page.next_version).catch(show);
			}}, newest.checked ? 'Older' : 'Next page'),
			h('span', {class: 'note', text: page.events.length
				? `versions ${page.events[0].version} to ${page.events[page.events.length - 1].version}` : 'no events'}));
	}

	// "Does this stream hold claim key ...?"
	function claimForm() {
		const id = uid('claim');
		const key = h('input', {id, type: 'text', required: true, maxlength: '1024', autocomplete: 'off', placeholder: 'username:ada', 'aria-describedby': `${id}-hint`});
		const out = h('p', {class: 'status claim-answer', role: 'status', 'aria-live': 'polite'});
		return h('form', {class: 'claim-check', onsubmit: async (e) => {
			e.preventDefault();
			const k = key.value;
			if (!k) return;
			out.className = 'status claim-answer';
			out.textContent = 'Checking…';
			delete out.dataset.holds;
			try {
				const r = await get(`/streams/${seg(stream)}/info?claim=${encodeURIComponent(k)}`, {signal: ctl.signal});
				out.dataset.holds = r.holds_claim ? 'yes' : 'no';
				out.className = `claim-answer ${r.holds_claim ? 'ok' : 'notice'}`;
				out.textContent = r.holds_claim ? `Yes: ${stream} holds the claim “${k}”.` : `No: ${stream} does not hold the claim “${k}”.`;
			} catch (err) {
				if (!ctl.signal.aborted) out.replaceChildren(errorBox(err));
			}
		}},
		h('div', {class: 'field'}, h('label', {for: id, text: 'Does this stream hold claim key …?'}), key),
		h('p', {id: `${id}-hint`, class: 'hint', text: 'The exact key the append claimed, e.g. username:ada. It is only compared, never stored.'}),
		h('div', {class: 'buttons'}, h('button', {type: 'submit'}, 'Check claim')),
		out);
	}

	function show(e) {
		if (!ctl.signal.aborted) info.append(errorBox(e));
	}

	async function lookup() {
		if (!stream) {
			info.replaceChildren(h('h2', {id: 'st-info', text: 'Look up a stream'}),
				h('p', {class: 'hint', text: 'Type a stream name (as in the Log page, e.g. user-42), or follow a stream link from an event.'}));
			main.setAttribute('aria-busy', 'false');
			return;
		}
		try {
			const s = await get(`/streams/${seg(stream)}/info`, {signal: ctl.signal});
			info.replaceChildren(h('h2', {id: 'st-info', text: stream}), s.exists ? facts([
				['Last version', fmt.int(s.last_version)],
				['Last position', fmt.int(s.last_position)],
				['Events', fmt.int(s.event_count)],
				['Claims held', s.claims.length
					? h('div', {}, h('p', {class: 'hint', text: `${s.claims.length}${s.claims_truncated ? '+' : ''}, by id: kappa keeps claim keys only as keyed hashes`}),
						h('ul', {class: 'claims'}, s.claims.map((c) => h('li', {}, h('code', {text: c}))), s.claims_truncated ? h('li', {text: '…'}) : null))
					: 'none'],
			]) : h('p', {text: 'No such stream: nothing was ever appended to it.'}),
			s.exists ? claimForm() : null);
			if (s.exists) await load(null);
		} catch (e) {
			show(e);
		}
		main.setAttribute('aria-busy', 'false');
	}
	newest.addEventListener('change', () => {
		pages.length = 0;
		if (stream) load(null).catch(show);
	});
	lookup();
	return () => ctl.abort();
}
