// audit.js -- the Audit and privacy page: the log's current signed digest (GET
// /audit/digest, kept as a JSON download for `kappa verify --digest`), a verification of
// the whole hash chain as a server job with a progress bar (POST /audit/verify, then GET
// /audit/verify/status until it ends; admin), and a data subject's export (GET
// /subjects/{s}/export, as a JSON download) and forget (POST /subjects/{s}/forget, behind
// a typed confirmation). A server without the subject routes says so.

import {get, post, seg, askToken, ApiError} from '../api.js';
import {h, uid, fmt, facts, errorBox, download, sleep} from '../dom.js';

const STATUS_MS = 200;

export function mount(main) {
	const ctl = new AbortController();
	let digest = null;
	const digestBox = h('div', {class: 'digest'});
	const verifyOut = h('div', {class: 'result', 'aria-live': 'polite'});
	const againstId = uid('against');
	const against = h('input', {id: againstId, type: 'checkbox', checked: true});
	const subjId = uid('subject'), confirmId = uid('confirm');
	const subject = h('input', {id: subjId, type: 'text', maxlength: '200', autocomplete: 'off', required: true});
	const confirm = h('input', {id: confirmId, type: 'text', autocomplete: 'off', 'aria-describedby': `${confirmId}-hint`});
	const forgetBtn = h('button', {type: 'button', class: 'danger', disabled: true, onclick: forget}, 'Forget this subject');
	const subjOut = h('div', {class: 'result subject-result', 'aria-live': 'polite'});

	main.append(h('h1', {text: 'Audit and privacy'}),
		h('section', {'aria-labelledby': 'au-digest'}, h('h2', {id: 'au-digest', text: 'Signed digest'}),
			h('p', {class: 'hint', text: 'Every batch of the log is hash-chained. Keep a digest somewhere else: later it proves the log was not rewritten up to it.'}),
			digestBox,
			h('div', {class: 'buttons'},
				h('button', {type: 'button', onclick: () => loadDigest()}, 'Take a new digest'),
				h('button', {type: 'button', class: 'secondary', onclick: () => digest && download(`kappa-digest-${digest.position}.json`, JSON.stringify(digest, null, 2))}, 'Download digest'))),
		h('section', {'aria-labelledby': 'au-verify'}, h('h2', {id: 'au-verify', text: 'Verify the log'}),
			h('p', {class: 'hint', text: 'Recomputes the whole chain on the server (admin); this reads every segment.'}),
			h('div', {class: 'field check'}, against, h('label', {for: againstId, text: 'Also prove the log extends the digest above'})),
			h('div', {class: 'buttons'}, h('button', {type: 'button', onclick: verify}, 'Verify')),
			verifyOut),
		h('section', {'aria-labelledby': 'au-subject'}, h('h2', {id: 'au-subject', text: 'A data subject'}),
			h('div', {class: 'field'}, h('label', {for: subjId, text: 'Subject id'}), subject),
			h('div', {class: 'buttons'}, h('button', {type: 'button', onclick: exportSubject}, 'Export as JSON')),
			h('div', {class: 'danger-zone'},
				h('div', {class: 'field'}, h('label', {for: confirmId, text: 'To forget, type the subject id again'}), confirm),
				h('p', {id: `${confirmId}-hint`, class: 'hint', text: 'Forgetting destroys the subject\'s key: their personal data becomes unreadable everywhere, for good.'}),
				h('div', {class: 'buttons'}, forgetBtn)),
			subjOut));

	const armed = () => {
		forgetBtn.disabled = !(subject.value.trim() && confirm.value === subject.value.trim());
	};
	subject.addEventListener('input', armed);
	confirm.addEventListener('input', armed);

	function unavailable(e, what) {
		if (e instanceof ApiError && e.noRoute) {
			subjOut.replaceChildren(h('p', {class: 'notice', role: 'status', text: `${what} is not available on this server (this kappa has no ${what.toLowerCase()} endpoint).`}));
			return true;
		}
		return false;
	}

	async function adminRetry(e, again) {
		return e instanceof ApiError && e.status === 403 && (await askToken('This needs a token with the admin scope.')) && again();
	}

	async function loadDigest() {
		try {
			digest = await get('/audit/digest', {signal: ctl.signal});
			digestBox.replaceChildren(facts([
				['Position', `${fmt.int(digest.position)} (covers every event below it)`],
				['Chain hash', h('code', {class: 'hash', text: digest.chain_hash})],
				['Time', digest.time],
				['Signature', h('code', {class: 'hash', text: digest.signature})],
				['Public key', h('code', {class: 'hash', text: digest.public_key || ''})],
			]));
		} catch (e) {
			if (!ctl.signal.aborted) digestBox.replaceChildren(errorBox(e));
		}
		main.setAttribute('aria-busy', 'false');
	}

	function showResult(r) {
		verifyOut.append(
			h('p', {class: r.ok ? 'ok' : 'error', role: 'status', 'data-verified': r.ok ? 'ok' : 'broken',
				text: r.ok ? `The chain holds${r.digest_checked ? ' and extends the digest' : ''}.` : `Broken: ${r.error}`}),
			facts([
				['Events', `${fmt.int(r.first_position)} to ${fmt.int(r.end_position)} (${fmt.int(r.events)})`],
				['Batches', fmt.int(r.batches)],
				['Read', `${fmt.bytes(r.bytes)} in ${fmt.seconds(r.seconds)} (${fmt.num(r.mb_per_s, 0)} MB/s)`],
				['Chain hash', h('code', {class: 'hash', text: r.chain_hash})],
			]));
	}

	// A progress bar for the job's status: bytes verified of the log's bytes, and events.
	function progressOf(st) {
		const id = uid('verify-progress');
		const pct = Math.max(0, Math.min(100, st.percent || 0));
		return h('div', {class: 'verify-progress', 'data-state': st.state},
			h('label', {for: id, text: `${st.state === 'running' ? 'Verifying' : 'Verified'}: ${fmt.int(st.positions_done)} of ${fmt.int(st.positions_total)} events, ` +
				`${fmt.bytes(st.bytes_done)} of ${fmt.bytes(st.bytes_total)} (${pct.toFixed(0)}%), ${fmt.seconds(st.seconds)}`}),
			h('progress', {id, class: 'verify', max: '100', value: pct.toFixed(1)}));
	}

	let verifying = false;
	async function verify() {
		if (verifying) return;
		verifying = true;
		const bar = h('div', {role: 'status', 'aria-live': 'polite'});
		verifyOut.replaceChildren(bar);
		try {
			let q = '';
			if (against.checked && digest) q = `?position=${digest.position}&chain_hash=${digest.chain_hash}`;
			try {
				await post(`/audit/verify${q}`, undefined, {signal: ctl.signal});
			} catch (e) {
				// Another verification is running: follow that one.
				if (!(e instanceof ApiError && e.status === 409)) throw e;
				bar.before(h('p', {class: 'notice', text: 'A verification was already running: following it.'}));
			}
			let st;
			for (;;) {
				st = await get('/audit/verify/status', {signal: ctl.signal});
				bar.replaceChildren(progressOf(st));
				if (st.state !== 'running' || ctl.signal.aborted) break;
				await sleep(STATUS_MS, ctl.signal);
			}
			if (ctl.signal.aborted) return;
			if (st.result) showResult(st.result);
			else verifyOut.append(errorBox(new Error(`Verification ${st.state}: ${st.error ? st.error.message : 'no result'}`)));
		} catch (e) {
			if (ctl.signal.aborted) return;
			verifying = false;
			if (!(await adminRetry(e, verify))) verifyOut.replaceChildren(errorBox(e));
		} finally {
			verifying = false;
		}
	}

	async function exportSubject() {
		const s = subject.value.trim();
		if (!s) {
			subject.focus();
			return;
		}
		subjOut.replaceChildren(h('p', {class: 'status', text: 'Exporting…'}));
		try {
			const doc = await get(`/subjects/${seg(s)}/export`, {signal: ctl.signal});
			download(`subject-${s.replace(/[^A-Za-z0-9._-]/g, '_')}.json`, JSON.stringify(doc, null, 2));
			subjOut.replaceChildren(h('p', {class: 'ok', role: 'status', text: `Exported ${fmt.int((doc.events || []).length)} events and ${Object.keys(doc.views || {}).length} views' rows.`}));
		} catch (e) {
			if (ctl.signal.aborted || unavailable(e, 'Export')) return;
			if (!(await adminRetry(e, exportSubject))) subjOut.replaceChildren(errorBox(e));
		}
	}

	async function forget() {
		const s = subject.value.trim();
		if (!s || confirm.value !== s) return;
		subjOut.replaceChildren(h('p', {class: 'status', text: 'Forgetting…'}));
		try {
			const r = await post(`/subjects/${seg(s)}/forget`, {}, {signal: ctl.signal});
			confirm.value = '';
			armed();
			subjOut.replaceChildren(h('p', {class: 'ok', role: 'status', text: `Subject ${r.subject ?? s} is forgotten (at position ${fmt.int(r.position)}).`}));
		} catch (e) {
			if (ctl.signal.aborted || unavailable(e, 'Forget')) return;
			if (!(await adminRetry(e, forget))) subjOut.replaceChildren(errorBox(e));
		}
	}

	loadDigest();
	return () => ctl.abort();
}
