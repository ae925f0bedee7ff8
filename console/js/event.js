// event.js -- one event shown in full (position, stream, version, type, time, subject or
// "forgotten", and its JSON), and the events table the Log and Streams pages share.

import {h, facts, fmt} from './dom.js';

export function subjectText(ev) {
	if (ev.forgotten) return ev.subject ? `${ev.subject} (forgotten)` : 'forgotten';
	return ev.subject || '—';
}

export function eventDetail(ev) {
	return h('div', {class: 'event-detail'},
		facts([
			['Position', fmt.int(ev.position)],
			['Stream', h('a', {href: `#/streams/${encodeURIComponent(ev.stream)}`, text: ev.stream})],
			['Version', fmt.int(ev.version)],
			['Type', ev.type],
			['Time', ev.time],
			['Subject', subjectText(ev)],
		]),
		ev.forgotten ? h('p', {class: 'note', text: 'The subject was forgotten: this event\'s personal data can no longer be read.'}) : null,
		h('pre', {class: 'json', tabindex: '0', 'aria-label': 'the event as JSON'}, JSON.stringify(ev, null, 2)));
}

// A table of events; clicking (or Enter on) a row's position button calls onPick(ev).
// Returns {el, add(ev, atTop), set(events), rows()}.
export function eventsTable(caption, onPick, max = 500) {
	const body = h('tbody');
	const table = h('table', {class: 'events'},
		h('caption', {class: 'sr-only', text: caption}),
		h('thead', {}, h('tr', {}, ['Position', 'Time', 'Stream', 'Version', 'Type', 'Subject'].map((c) => h('th', {scope: 'col', text: c})))),
		body);
	function row(ev) {
		const pick = h('button', {type: 'button', class: 'link', 'aria-label': `event ${ev.position}: details`, onclick: () => {
			for (const r of body.querySelectorAll('tr[aria-selected="true"]')) r.setAttribute('aria-selected', 'false');
			tr.setAttribute('aria-selected', 'true');
			onPick(ev);
		}}, String(ev.position));
		const tr = h('tr', {'data-position': ev.position, 'aria-selected': 'false'},
			h('td', {}, pick), h('td', {class: 'time', text: (ev.time || '').replace('T', ' ').replace('Z', '')}),
			h('td', {text: ev.stream}), h('td', {text: ev.version}), h('td', {text: ev.type}),
			h('td', {class: ev.forgotten ? 'forgotten' : '', text: subjectText(ev)}));
		return tr;
	}
	return {
		el: h('div', {class: 'scroll', tabindex: '-1'}, table),
		add(ev, atTop) {
			const r = row(ev);
			if (atTop) body.prepend(r);
			else body.append(r);
			while (body.rows.length > max) body.deleteRow(atTop ? -1 : 0);
		},
		set(events) {
			body.replaceChildren(...events.map(row));
		},
		rows: () => body.rows.length,
	};
}
