// dom.js -- small helpers to build the console's DOM without innerHTML (nothing from the
// server is ever parsed as markup), and to format numbers, sizes and durations.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false) continue;
		if (k === 'class') el.setAttribute('class', v);
		else if (k === 'text') el.textContent = v;
		else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
		else if (k in el && typeof v !== 'string' && !(el instanceof SVGElement)) el[k] = v;
		else el.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false) continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return el;
}

// h('button', {class: 'x', onclick: f}, 'text', child, ...)
export function h(tag, attrs, ...children) {
	return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
	return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

let ids = 0;
// A unique id for label/for and aria pairs.
export function uid(prefix) {
	ids += 1;
	return `${prefix}-${ids}`;
}

export function clear(el) {
	el.replaceChildren();
	return el;
}

export const fmt = {
	int(n) {
		return n === null || n === undefined || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en');
	},
	num(n, digits = 1) {
		if (n === null || n === undefined || !Number.isFinite(n)) return '–';
		return n.toLocaleString('en', {maximumFractionDigits: digits});
	},
	bytes(n) {
		if (n === null || n === undefined || !Number.isFinite(n)) return '–';
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
		let i = 0;
		while (n >= 1024 && i < units.length - 1) {
			n /= 1024;
			i += 1;
		}
		return `${n.toLocaleString('en', {maximumFractionDigits: i ? 1 : 0})} ${units[i]}`;
	},
	seconds(s) {
		if (s === null || s === undefined || !Number.isFinite(s)) return '–';
		if (s < 0.001) return `${(s * 1e6).toFixed(0)} µs`;
		if (s < 1) return `${(s * 1000).toLocaleString('en', {maximumFractionDigits: 2})} ms`;
		return `${s.toLocaleString('en', {maximumFractionDigits: 2})} s`;
	},
	duration(s) {
		if (!Number.isFinite(s)) return '–';
		s = Math.floor(s);
		const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
		const m = Math.floor((s % 3600) / 60), ss = s % 60;
		if (d) return `${d} d ${hh} h`;
		if (hh) return `${hh} h ${m} min`;
		if (m) return `${m} min ${ss} s`;
		return `${ss} s`;
	},
};

// A value as table-cell text: objects as compact JSON, null as an empty cell marker.
export function cellText(v) {
	if (v === null || v === undefined) return '∅';
	if (typeof v === 'object') return JSON.stringify(v);
	return String(v);
}

// Rows (objects) as a table, columns from the first rows' keys. Wrapped so it scrolls
// sideways on a narrow screen.
export function rowsTable(rows, caption) {
	const cols = [];
	for (const r of rows.slice(0, 50)) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
	const table = h('table', {class: 'rows'},
		caption ? h('caption', {text: caption}) : null,
		h('thead', {}, h('tr', {}, cols.map((c) => h('th', {scope: 'col', text: c})))),
		h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', {text: cellText(r[c])}))))));
	return h('div', {class: 'scroll', tabindex: '0', role: 'region', 'aria-label': caption || 'results'}, table);
}

// A definition list from [term, value] pairs (value: text or a node).
export function facts(pairs) {
	return h('dl', {class: 'facts'}, pairs.map(([t, v]) => [h('dt', {text: t}), h('dd', {}, v)]));
}

export function errorBox(e, extra) {
	return h('p', {class: 'error', role: 'alert'}, e && e.message ? e.message : String(e), extra || null);
}

// Save 'text' as a file called 'name' (a JSON download, for example).
export function download(name, text, type = 'application/json') {
	const url = URL.createObjectURL(new Blob([text], {type}));
	const a = h('a', {href: url, download: name, hidden: true});
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Resolve after 'ms', or at once when 'signal' aborts.
export function sleep(ms, signal) {
	return new Promise((resolve) => {
		const t = setTimeout(resolve, ms);
		if (signal) signal.addEventListener('abort', () => {
			clearTimeout(t);
			resolve();
		}, {once: true});
	});
}
