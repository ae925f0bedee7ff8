// console_test.js -- the web console in headless Chromium (Debian's, driven by
// playwright-core from .tools/) against a running `kappa serve` with tokens and the social
// example loaded; run by tests/scripts/console.sh, which starts and stops the server.
//
// usage: node console_test.js BASE_URL ADMIN_TOKEN READ_TOKEN OUT_DIR
// Prints TAP. Checks the server's answers for the console (types, CSP, ETag, 404), then in
// the browser: the token dialog and sessionStorage, every page at 1280x800 and 390x844
// with no console error, no sideways scrolling on a phone and a label on every field,
// keyboard navigation, the live tail (an event appended now shows within 1 s; pause;
// filter; details), the disk used per segment, a stream's claims and events and a claim
// key check, a named query's form, SQL, a rebuild with its progress, the lag charts (events
// and seconds), the digest and a verification job's progress bar and result, subject
// export and forget. Screenshots
// of every page go to OUT_DIR. Fails (never skips) when Chromium cannot be launched.
'use strict';
const fs = require('fs');
const path = require('path');

const [BASE, ADMIN, READ, OUT] = process.argv.slice(2);
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
	'--disable-component-update', '--disable-sync', '--no-first-run'];
const DESKTOP = {width: 1280, height: 800};
const PHONE = {width: 390, height: 844};
let n = 0, failed = 0;

function check(cond, desc, ...diag) {
	n += 1;
	if (cond) {
		console.log(`ok ${n} - ${desc}`);
	} else {
		failed += 1;
		console.log(`not ok ${n} - ${desc}`);
		for (const d of diag) for (const l of String(d).split('\n')) console.log(`# ${l}`);
	}
	return cond;
}

function finish() {
	console.log(`1..${n}`);
	process.exit(failed || !n ? 1 : 0);
}

async function http(method, p, opts = {}) {
	const headers = {...(opts.headers || {})};
	if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
	if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
	const res = await fetch(BASE + p, {method, headers, body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined});
	const text = await res.text();
	let json = null;
	try {
		json = JSON.parse(text);
	} catch {
		// not JSON
	}
	return {status: res.status, headers: res.headers, text, json};
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function serverChecks() {
	const root = await http('GET', '/');
	const csp = root.headers.get('content-security-policy') || '';
	check(root.status === 200 && root.headers.get('content-type') === 'text/html; charset=utf-8',
		'GET / answers the console as text/html without a token', `status ${root.status} type ${root.headers.get('content-type')}`);
	check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && /style-src 'self'/.test(csp) && !/unsafe/.test(csp),
		'the console has a strict Content-Security-Policy (nothing inline, nothing from elsewhere)', `CSP: ${csp}`);
	check(root.headers.get('x-content-type-options') === 'nosniff' && root.headers.get('cache-control') === 'no-cache',
		'the console is nosniff and revalidated on each load (Cache-Control: no-cache)');
	const scripts = [...root.text.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
	check(scripts.length > 0 && scripts.every((s) => /\bsrc=/.test(s) && /type="module"/.test(s)) && !/<style|\sstyle=|\son[a-z]+=/i.test(root.text),
		'index.html has no inline script, style or event handler (module scripts only)', scripts.join(' '));
	const etag = root.headers.get('etag');
	const again = await http('GET', '/', {headers: {'If-None-Match': etag}});
	check(etag && again.status === 304 && again.text === '', 'an unchanged console file answers 304 to If-None-Match', `etag ${etag}, status ${again.status}`);
	const types = {'/console/js/main.js': 'text/javascript; charset=utf-8', '/console/style.css': 'text/css; charset=utf-8', '/console/icon.svg': 'image/svg+xml'};
	const got = {};
	for (const [p, t] of Object.entries(types)) {
		const r = await http('GET', p);
		got[p] = `${r.status} ${r.headers.get('content-type')}`;
		if (r.status !== 200 || r.headers.get('content-type') !== t || !r.headers.get('content-security-policy')) got[p] += ' (wrong)';
	}
	check(Object.values(got).every((v) => !v.endsWith('(wrong)')), 'console files have their content types (JavaScript, CSS, SVG) and the CSP', JSON.stringify(got));
	const missing = await http('GET', '/console/js/nope.js');
	check(missing.status === 404 && missing.json && missing.json.error.code === 'not_found', 'an unknown console file is 404', `${missing.status} ${missing.text}`);
	const post = await http('POST', '/');
	check(post.status === 405, 'POST / is 405', post.status);
	const open = await http('GET', '/views');
	check(open.status === 401, 'the API itself still needs a token (GET /views without one is 401)', open.status);
	const info = await http('GET', '/streams/user-u1/info?claim=username%3Ajohnschmidt1', {token: READ});
	check(info.status === 200 && info.json.exists === true && info.json.last_version >= 0 &&
		info.json.claims.length > 0 && info.json.claims.every((c) => /^[0-9a-f]{64}$/.test(c)) &&
		!info.text.includes('johnschmidt1') && info.json.holds_claim === true && info.json.event_count > 0,
	'GET /streams/{s}/info: last version, event count and the claims the stream holds (by id; ?claim=KEY checks one)', info.text);
	const other = await http('GET', '/streams/user-u1/info?claim=username%3Anobody', {token: READ});
	check(other.status === 200 && other.json.holds_claim === false, 'a claim the stream does not hold says so', other.text);
	const none = await http('GET', '/streams/no-such-stream/info', {token: READ});
	check(none.status === 200 && none.json.exists === false && none.json.last_version === null && none.json.claims.length === 0,
		'GET /streams/{s}/info of a stream never written says it does not exist', none.text);
	const view = await http('GET', '/views/social', {token: READ});
	const ht = view.json && (view.json.queries || []).find((q) => q.name === 'home_timeline');
	check(ht && JSON.stringify(ht.params) === JSON.stringify([{name: 'user', optional: false}, {name: 'limit', optional: false}, {name: 'before', optional: true}]),
		'GET /views/{v} lists its named queries with their parameters', view.text.slice(0, 400));
}

async function waitViewsLive() {
	for (let i = 0; i < 600; i++) {
		const r = await http('GET', '/views', {token: READ});
		if (r.status === 200 && r.json.views.every((v) => v.state === 'live' && v.lag === 0)) return true;
		await sleep(100);
	}
	return false;
}

// Console messages of type error, and uncaught exceptions, since the last call.
function watch(page) {
	const seen = [];
	page.on('console', (m) => {
		if (m.type() === 'error') seen.push({text: m.text(), url: (m.location() || {}).url || ''});
	});
	page.on('pageerror', (e) => seen.push({text: `uncaught: ${e.message}`, url: ''}));
	return {
		take(allowed) {
			const out = seen.splice(0).filter((e) => !(allowed && /^Failed to load resource/.test(e.text) && allowed.test(`${e.text} ${e.url}`)));
			return out.map((e) => `${e.text} ${e.url}`);
		},
	};
}

async function shots(page, name) {
	await page.screenshot({path: path.join(OUT, `${name}-desktop.png`)});
	await page.setViewportSize(PHONE);
	await page.waitForTimeout(150);
	const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	await page.screenshot({path: path.join(OUT, `${name}-phone.png`), fullPage: true});
	await page.setViewportSize(DESKTOP);
	const unlabeled = await page.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea')]
		.filter((el) => !el.labels.length && !el.getAttribute('aria-label')).map((el) => el.outerHTML));
	check(wide <= 1, `${name}: no sideways scrolling on a phone (390x844)`, `${wide} px too wide`);
	check(unlabeled.length === 0, `${name}: every field has a label`, ...unlabeled);
}

async function show(page, hash) {
	await page.evaluate((hsh) => {
		location.hash = hsh;
	}, hash);
	await page.waitForSelector('main[aria-busy="false"]', {timeout: 10000});
}

async function browserChecks(browser) {
	const ctx = await browser.newContext({viewport: DESKTOP, acceptDownloads: true});
	const page = await ctx.newPage();
	const errs = watch(page);

	// The token: asked for on the first 401, kept in sessionStorage only.
	await page.goto(`${BASE}/#/overview`);
	const dialog = await page.waitForSelector('#token-dialog[open]', {timeout: 5000}).catch(() => null);
	check(dialog, 'the console asks for a token when the API answers 401');
	await page.fill('#token-input', ADMIN);
	await page.press('#token-input', 'Enter');
	await page.waitForSelector('main[aria-busy="false"]', {timeout: 10000});
	const store = await page.evaluate(() => ({s: sessionStorage.getItem('kappa.token'), l: localStorage.length}));
	check(store.s === ADMIN && store.l === 0, 'the token is kept in sessionStorage only', JSON.stringify(store));
	let e = errs.take(/401/);
	check(e.length === 0, 'overview: loads without console errors (beyond the 401s that asked for the token)', ...e);

	// Overview: the head, and the live chart once two readings are in.
	const head = (await http('GET', '/log?from=0&limit=0', {token: READ})).json.head;
	const headCard = await page.textContent('.cards .card:first-child .value');
	check(Number(headCard.replace(/,/g, '')) === head, 'overview: shows the head position', `shows ${headCard}, head ${head}`);
	const line = await page.waitForSelector('svg.chart path.line, svg.chart circle.dot', {timeout: 8000}).catch(() => null);
	check(line, 'overview: the events/s chart draws from /metrics');
	const fsync = await page.textContent('.cards .card:nth-child(3) .value');
	check(/\d/.test(fsync), 'overview: fsync p50/p99 from the histogram', fsync);
	const segs = (await http('GET', '/log/segments', {token: READ})).json;
	await page.waitForSelector('table.segments tbody tr', {timeout: 8000}).catch(() => null);
	const segRows = await page.$$eval('table.segments tbody tr', (trs) => trs.map((tr) => ({
		first: tr.dataset.first, state: tr.cells[1].textContent, size: tr.querySelector('td.size').textContent,
		meter: tr.querySelector('meter') ? [tr.querySelector('meter').value, tr.querySelector('meter').getAttribute('aria-label')] : null})));
	const newest = segs.segments[segs.segments.length - 1];
	check(segRows.length === Math.min(segs.count, 50) && segRows.length > 0 && segRows[0].first === String(newest.first_position) &&
		segRows[0].state === 'active' && segRows.every((r) => r.meter && r.meter[0] > 0 && /segment \d+: /.test(r.meter[1])),
	`overview: disk used per segment, newest first, a labelled bar each (${segRows.length} of ${segs.count})`, JSON.stringify(segRows.slice(0, 3)), JSON.stringify(newest));
	await shots(page, 'overview');

	// Keyboard: the navigation works from the keyboard.
	await page.focus('nav a[data-page="log"]');
	await page.keyboard.press('Enter');
	await page.waitForSelector('main[aria-busy="false"] h1:text("Log")', {timeout: 10000});
	check(page.url().endsWith('#/log'), 'the navigation works with the keyboard (Enter on a link)', page.url());

	// Log: live tail.
	const live = await page.waitForSelector('p.status[data-state="live"]', {timeout: 10000}).catch(() => null);
	check(live && (await page.$$('table.events tbody tr')).length > 0, 'log: the tail is live, with the latest events');
	const marker = `m${Date.now()}`;
	const ap = await http('POST', '/streams/console-probe', {token: ADMIN, body: {events: [{type: 'ConsoleProbe', data: {marker}}]}});
	const t0 = Date.now();
	const row = await page.waitForSelector(`table.events tr[data-position="${ap.json && ap.json.last_position}"]`, {timeout: 3000}).catch(() => null);
	const ms = Date.now() - t0;
	check(ap.status === 201 && row && ms <= 1000, `log: an event appended now shows in the live tail within 1 s (${ms} ms)`, ap.text);
	if (row) {
		await row.$eval('button', (b) => b.click());
		const det = await page.textContent('.detail-pane');
		check(det.includes(marker) && det.includes('console-probe') && det.includes('ConsoleProbe'), 'log: a click shows the event whole (stream, type, JSON)', det.slice(0, 300));
	}
	await page.click('button[aria-pressed]');
	const ap2 = await http('POST', '/streams/console-probe', {token: ADMIN, body: {events: [{type: 'ConsoleProbe', data: {n: 2}}]}});
	await page.waitForSelector('p.status:has-text("1 new held")', {timeout: 3000}).catch(() => null);
	const heldRow = await page.$(`table.events tr[data-position="${ap2.json.last_position}"]`);
	await page.click('button[aria-pressed]');
	const resumed = await page.waitForSelector(`table.events tr[data-position="${ap2.json.last_position}"]`, {timeout: 2000}).catch(() => null);
	check(!heldRow && resumed, 'log: pause holds new events back and resume shows them');
	await page.fill('input[placeholder="PostCreated,UserFollowed"]', 'ConsoleProbe');
	await page.click('form.filters button[type="submit"]');
	await page.waitForSelector('p.status[data-state="live"]', {timeout: 5000});
	await page.waitForSelector('table.events tbody tr', {timeout: 5000});
	const typesShown = await page.$$eval('table.events tbody tr td:nth-child(5)', (tds) => [...new Set(tds.map((td) => td.textContent))]);
	check(typesShown.length === 1 && typesShown[0] === 'ConsoleProbe', 'log: the type filter shows only that type', JSON.stringify(typesShown));
	e = errs.take();
	check(e.length === 0, 'log: no console errors', ...e);
	await shots(page, 'log');

	// Streams: a user's stream, its claims and events.
	await show(page, '#/streams/user-u1');
	const info = await page.textContent('.stream-info');
	const evRows = await page.$$('table.events tbody tr');
	check(/Claims held/.test(info) && /[0-9a-f]{64}/.test(info) && /Last version/.test(info) && evRows.length > 0,
		'streams: a stream shows its last version, its claims and its events', info.slice(0, 300));
	await page.fill('form.claim-check input', 'username:johnschmidt1');
	await page.click('form.claim-check button[type="submit"]');
	const yes = await page.waitForSelector('.claim-answer[data-holds]', {timeout: 5000}).catch(() => null);
	const yesText = yes ? `${await yes.getAttribute('data-holds')} ${await yes.textContent()}` : '';
	await page.fill('form.claim-check input', 'username:nobody');
	await page.keyboard.press('Enter');
	await page.waitForSelector('.claim-answer[data-holds="no"]', {timeout: 5000}).catch(() => null);
	const noText = await page.textContent('.claim-answer');
	check(/^yes Yes: user-u1 holds/.test(yesText) && /^No: user-u1 does not hold/.test(noText),
		'streams: "does this stream hold claim key …?" answers yes for its claim and no for another', yesText, noText);
	e = errs.take();
	check(e.length === 0, 'streams: no console errors', ...e);
	await shots(page, 'streams');

	// Views: a named query's form, SQL, and a rebuild with its progress.
	await show(page, '#/views/social');
	await page.waitForSelector('article.view-card[data-view="social"] .state.live', {timeout: 10000});
	const form = page.locator('form.query-form[data-query="home_timeline"]');
	await form.getByLabel('user', {exact: true}).fill('u1');
	await form.getByLabel('limit', {exact: true}).fill('5');
	await form.getByRole('button', {name: 'Run'}).click();
	await page.waitForSelector('form.query-form[data-query="home_timeline"] table.rows tbody tr', {timeout: 5000}).catch(() => null);
	const qrows = await page.$$('form.query-form[data-query="home_timeline"] table.rows tbody tr');
	check(qrows.length > 0 && qrows.length <= 5, `views: the home_timeline form (built from its parameters) returns rows (${qrows.length})`);
	await page.click('form.sql-form button[type="submit"]');
	await page.waitForSelector('form.sql-form table.rows tbody tr', {timeout: 5000}).catch(() => null);
	const srows = await page.$$eval('form.sql-form table.rows tbody tr td', (tds) => tds.map((td) => td.textContent));
	check(srows.includes('users') && srows.includes('posts'), 'views: ad-hoc SQL shows its rows as a table', JSON.stringify(srows));
	await page.click('article.view-card[data-view="social"] button:has-text("Rebuild")');
	const bar = await page.waitForSelector('article.view-card[data-view="social"] progress.rebuild', {state: 'visible', timeout: 3000}).catch(() => null);
	check(bar, 'views: a rebuild shows its progress');
	const done = await page.waitForSelector('article.view-card[data-view="social"] p.status[data-done]', {timeout: 60000}).catch(() => null);
	const doneText = done ? await done.textContent() : '';
	check(/Rebuilt: live/.test(doneText), 'views: the rebuild finishes and the view is live again', doneText);
	// Lag as two charts, events and seconds, each with a series for the view.
	const lagCharts = await page.$$eval('figure[data-chart^="lag-"]', (figs) => figs.map((f) => ({
		chart: f.dataset.chart, drawn: f.querySelectorAll('svg.chart path.line, svg.chart circle.dot').length,
		legend: [...f.querySelectorAll('.legend li')].map((li) => li.textContent)})));
	const ev = lagCharts.find((c) => c.chart === 'lag-events'), sec = lagCharts.find((c) => c.chart === 'lag-seconds');
	const views = ((await http('GET', '/views', {token: READ})).json || {views: []}).views;
	const drawnAll = (c) => c && c.drawn === views.length && c.legend.length === views.length;
	check(views.length > 0 && drawnAll(ev) && drawnAll(sec) && ev.legend.some((l) => /^social: \d/.test(l)) &&
		sec.legend.some((l) => /^social: [\d.]+ (s|ms|µs)$/.test(l)),
	`views: lag is charted in events and in seconds, a series for each of the ${views.length} views in both`, JSON.stringify(lagCharts));
	e = errs.take();
	check(e.length === 0, 'views: no console errors', ...e);
	await shots(page, 'views');

	// Audit and privacy.
	await show(page, '#/audit');
	const hash = await page.textContent('.digest code.hash');
	check(/^[0-9a-f]{64}$/.test(hash), 'audit: the signed digest is shown', hash);
	await page.click('button:has-text("Verify")');
	const verified = await page.waitForSelector('[data-verified]', {timeout: 30000}).catch(() => null);
	check(verified && (await verified.getAttribute('data-verified')) === 'ok', 'audit: verification runs and the chain holds (against the digest shown)');
	const vp = await page.$eval('.verify-progress', (d) => ({state: d.dataset.state, label: d.querySelector('label').textContent,
		value: d.querySelector('progress').value, max: d.querySelector('progress').max,
		labelled: d.querySelector('progress').labels.length})).catch((err) => ({err: err.message}));
	const vs = (await http('GET', '/audit/verify/status', {token: ADMIN})).json || {};
	check(vp.state === 'done' && vp.value === 100 && vp.max === 100 && vp.labelled === 1 && /\(100%\)/.test(vp.label) &&
		vp.label.includes(`${vs.positions_total.toLocaleString('en')} of ${vs.positions_total.toLocaleString('en')} events`) &&
		vs.state === 'done' && vs.result && vs.result.ok && vs.result.digest_checked === true,
	'audit: the verification job shows a labelled progress bar that ends at 100% with its events (GET /audit/verify/status agrees)',
	JSON.stringify(vp), JSON.stringify(vs).slice(0, 400));
	await page.fill('#page input[type="text"] >> nth=0', 'u1');
	const dl = page.waitForEvent('download', {timeout: 5000}).catch(() => null);
	await page.click('button:has-text("Export as JSON")');
	const outcome = await Promise.race([dl, page.waitForSelector('.notice', {timeout: 5000}).catch(() => null)]);
	const notice = await page.$('.notice');
	check(outcome && (notice ? /not available on this server/.test(await notice.textContent()) : true),
		'audit: export downloads the subject as JSON, or says it is not available on this server');
	const forgetBtn = page.locator('button:has-text("Forget this subject")');
	const confirm = page.getByLabel('To forget, type the subject id again');
	await confirm.fill('u2');
	const armedWrong = await forgetBtn.isEnabled();
	await confirm.fill('u1');
	const armedRight = await forgetBtn.isEnabled();
	check(!armedWrong && armedRight, 'audit: forget stays disabled until the subject id is typed again');
	await forgetBtn.click();
	await page.waitForFunction(() => {
		const out = document.querySelector('.subject-result');
		return /Forget is not available|is forgotten/.test(out.textContent) || out.querySelector('.error');
	}, null, {timeout: 10000}).catch(() => null);
	const frText = await page.textContent('.subject-result');
	check(/not available on this server|is forgotten/.test(frText), 'audit: forget answers (or says it is not available on this server)', frText);
	e = errs.take(/\/subjects\/.* 404|404.*\/subjects\//);
	check(e.length === 0, 'audit: no console errors', ...e);
	await shots(page, 'audit');

	// The token can be forgotten: the next API call asks again.
	await page.click('#token-forget');
	const asked = await page.waitForSelector('#token-dialog[open]', {timeout: 5000}).catch(() => null);
	const after = await page.evaluate(() => sessionStorage.getItem('kappa.token'));
	check(asked && after === null, '"Forget token" clears it, and the console asks again');
	await ctx.close();
}

(async () => {
	try {
		await serverChecks();
	} catch (err) {
		check(false, 'the server answers the console checks', err.stack);
	}
	check(await waitViewsLive(), 'the social example\'s views catch up');
	let chromium;
	try {
		({chromium} = require(path.join(__dirname, '../../.tools/node_modules/playwright-core')));
	} catch (err) {
		check(false, 'playwright-core is installed in .tools/ (scripts/setup fetches it)', err.message);
		finish();
	}
	if (!fs.existsSync(CHROMIUM)) {
		check(false, `Chromium is installed (${CHROMIUM}; scripts/setup installs Debian's chromium package)`);
		finish();
	}
	let browser;
	try {
		browser = await chromium.launch({executablePath: CHROMIUM, args: FLAGS, timeout: 60000});
	} catch (err) {
		check(false, 'Chromium launches headless', err.message);
		finish();
	}
	check(true, `Chromium ${browser.version()} launches headless`);
	try {
		await browserChecks(browser);
	} catch (err) {
		check(false, 'the browser checks run to their end', err.stack);
	}
	await browser.close();
	finish();
})();
