// api.js -- the console's calls to kappa's HTTP API (docs/http.md), from this same origin.
//
// A bearer token, when the server asks for one (401), is requested in a dialog and kept in
// sessionStorage only (this tab; closing it forgets the token), then sent as
// "Authorization: Bearer TOKEN". Errors become ApiError with the API's status, code and
// message. subscribe() reads /subscribe (Server-Sent Events) with fetch, not EventSource,
// because EventSource cannot send the Authorization header.

import {sleep} from './dom.js';

const KEY = 'kappa.token';

export class ApiError extends Error {
	constructor(status, code, message, body) {
		super(message || `HTTP ${status}`);
		this.status = status;
		this.code = code || '';
		this.body = body || null;
	}

	// The route does not exist on this server (an older kappa, for example).
	get noRoute() {
		return this.status === 404 && /no such route/.test(this.message);
	}
}

export function token() {
	return sessionStorage.getItem(KEY);
}

const listeners = new Set();
export function onTokenChange(f) {
	listeners.add(f);
}

export function setToken(t) {
	if (t) sessionStorage.setItem(KEY, t);
	else sessionStorage.removeItem(KEY);
	for (const f of listeners) f(token());
}

// Ask for a token in the dialog; resolves to true when one was given. Concurrent callers
// share one dialog.
let asking = null;
export function askToken(why) {
	if (asking) return asking;
	const dialog = document.getElementById('token-dialog');
	const form = document.getElementById('token-form');
	const input = document.getElementById('token-input');
	document.getElementById('token-why').textContent = why;
	input.value = '';
	asking = new Promise((resolve) => {
		const done = (ok) => {
			form.removeEventListener('submit', submit);
			document.getElementById('token-cancel').removeEventListener('click', cancel);
			dialog.removeEventListener('cancel', cancel);
			if (dialog.open) dialog.close();
			asking = null;
			resolve(ok);
		};
		const submit = (e) => {
			e.preventDefault();
			const t = input.value.trim();
			if (!t) return;
			setToken(t);
			done(true);
		};
		const cancel = (e) => {
			e.preventDefault();
			done(false);
		};
		form.addEventListener('submit', submit);
		document.getElementById('token-cancel').addEventListener('click', cancel);
		dialog.addEventListener('cancel', cancel);
		dialog.showModal();
		input.focus();
	});
	return asking;
}

async function errorFrom(res) {
	let body = null;
	try {
		body = await res.json();
	} catch {
		// not JSON: the status says enough
	}
	const e = body && body.error ? body.error : {};
	return new ApiError(res.status, e.code, e.message || res.statusText, body);
}

// method, path (with its query string); opts: body (sent as JSON), raw (return the
// Response), signal. Returns the parsed JSON answer.
export async function request(method, path, opts = {}) {
	for (;;) {
		const headers = {};
		const t = token();
		if (t) headers.Authorization = `Bearer ${t}`;
		const init = {method, headers, signal: opts.signal, cache: 'no-store'};
		if (opts.body !== undefined) {
			headers['Content-Type'] = 'application/json';
			init.body = JSON.stringify(opts.body);
		}
		const res = await fetch(path, init);
		if (res.status === 401) {
			const e = await errorFrom(res);
			const why = t ? `The server refused this tab's token (${e.message}). Enter another one.`
				: 'This server needs a bearer token (see docs/http.md, "Auth").';
			if (await askToken(why)) continue;
			throw new ApiError(401, 'unauthorized', 'no token: the server needs one for this');
		}
		if (!res.ok) throw await errorFrom(res);
		return opts.raw ? res : res.json();
	}
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, {...opts, body: body ?? {}});

export async function getText(path, opts) {
	const res = await request('GET', path, {...opts, raw: true});
	return res.text();
}

// A path segment (stream, view, subject), percent-encoded.
export const seg = (s) => encodeURIComponent(s);

// Follow /subscribe?PARAMS: onEvent(event) for each event, onState(state, detail) with
// 'live', 'reconnecting' or 'error'. Resumes after the last event seen when the connection
// drops. Ends when 'signal' aborts.
export async function subscribe(params, onEvent, onState, signal) {
	let next = params.from;
	while (!signal.aborted) {
		try {
			const q = new URLSearchParams();
			for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
			if (next !== undefined && next !== null) q.set('from', String(next));
			const res = await request('GET', `/subscribe?${q}`, {raw: true, signal});
			onState('live');
			const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
			let buf = '';
			for (;;) {
				const {value, done} = await reader.read();
				if (done) break;
				buf += value;
				let i;
				while ((i = buf.indexOf('\n\n')) >= 0) {
					const block = buf.slice(0, i);
					buf = buf.slice(i + 2);
					let data = '', kind = 'message';
					for (const line of block.split('\n')) {
						if (!line || line.startsWith(':')) continue;
						const c = line.indexOf(':');
						const field = c < 0 ? line : line.slice(0, c);
						let v = c < 0 ? '' : line.slice(c + 1);
						if (v.startsWith(' ')) v = v.slice(1);
						if (field === 'data') data += (data ? '\n' : '') + v;
						else if (field === 'event') kind = v;
					}
					if (!data) continue;
					const msg = JSON.parse(data);
					if (kind === 'error') {
						onState('error', msg);
						return;
					}
					next = msg.position + 1;
					onEvent(msg);
				}
			}
		} catch (e) {
			if (signal.aborted) return;
			if (e instanceof ApiError && e.status !== 503) {
				onState('error', e);
				return;
			}
		}
		if (signal.aborted) return;
		onState('reconnecting');
		await sleep(1000, signal);
	}
}
