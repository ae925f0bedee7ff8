// main.js -- the console's shell: a hash router (#/overview, #/log, #/streams/NAME,
// #/views/NAME, #/audit), the navigation's current page, the token indicator. Each page
// module exports mount(main, arg) and returns a function that stops what it started
// (timers, subscriptions) when another page is shown.

import {setToken, token, onTokenChange} from './api.js';
import * as overview from './pages/overview.js';
import * as log from './pages/log.js';
import * as streams from './pages/streams.js';
import * as views from './pages/views.js';
import * as audit from './pages/audit.js';

const pages = {overview, log, streams, views, audit};
const main = document.getElementById('page');
let stop = null;

function route() {
	const hash = location.hash || '#/overview';
	if (!hash.startsWith('#/')) return; // an in-page link (the skip link)
	const [name, ...rest] = hash.slice(2).split('/');
	const page = pages[name] ? name : 'overview';
	const arg = rest.length ? decodeURIComponent(rest.join('/')) : '';
	if (stop) stop();
	stop = null;
	main.replaceChildren();
	main.setAttribute('aria-busy', 'true');
	for (const a of document.querySelectorAll('nav a[data-page]')) {
		if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
		else a.removeAttribute('aria-current');
	}
	stop = pages[page].mount(main, arg) || null;
	const title = main.querySelector('h1');
	document.title = `${title ? title.textContent : page} · kappa console`;
}

function showToken(t) {
	document.getElementById('token-state').textContent = t ? 'token set for this tab' : '';
	document.getElementById('token-forget').hidden = !t;
}

document.getElementById('token-forget').addEventListener('click', () => {
	setToken(null);
	route();
});
document.getElementById('skip').addEventListener('click', (e) => {
	e.preventDefault();
	main.focus();
});
onTokenChange(showToken);
showToken(token());
window.addEventListener('hashchange', () => {
	route();
	main.focus({preventScroll: true});
});
route();
