// sse_client.js -- a real EventSource client (npm "eventsource") for server_features.sh.
//
// usage: node sse_client.js URL WANT OUTFILE
// Subscribes to URL, writes each event's id and position to OUTFILE as it arrives (one
// "id position" line each), reconnects by itself (with Last-Event-ID) when the server
// restarts, and exits 0 once WANT events have arrived (or 1 after 60 s).
'use strict';
const path = require('path');
const fs = require('fs');
const EventSource = require(path.join(__dirname, '../../.tools/node_modules/eventsource'));

const [url, want, outfile] = process.argv.slice(2);
const out = fs.openSync(outfile, 'w');
let got = 0;
let opens = 0;
const es = new EventSource(url);
es.onopen = () => { opens++; fs.writeSync(out, `# open ${opens}\n`); };
es.onmessage = (m) => {
	const ev = JSON.parse(m.data);
	fs.writeSync(out, `${m.lastEventId} ${ev.position}\n`);
	if (++got >= Number(want)) {
		es.close();
		fs.writeSync(out, `# done opens=${opens}\n`);
		process.exit(0);
	}
};
es.onerror = () => { fs.writeSync(out, '# error (reconnecting)\n'); };
setTimeout(() => { fs.writeSync(out, `# timed out with ${got}\n`); process.exit(1); }, 60000);
