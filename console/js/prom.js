// prom.js -- reading GET /metrics (Prometheus text format 0.0.4): samples by name and
// labels, and quantiles of a histogram the way Prometheus' histogram_quantile() does.

// Parse the text into Map(name -> [{labels, value}]).
export function parse(text) {
	const m = new Map();
	for (const line of text.split('\n')) {
		if (!line || line.startsWith('#')) continue;
		const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
		if (!match) continue;
		const labels = {};
		if (match[3]) {
			for (const lm of match[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
		}
		const v = match[4] === '+Inf' ? Infinity : Number(match[4]);
		if (!m.has(match[1])) m.set(match[1], []);
		m.get(match[1]).push({labels, value: v});
	}
	return m;
}

function matches(labels, want) {
	return Object.entries(want || {}).every(([k, v]) => labels[k] === v);
}

// The first sample of 'name' whose labels include 'want' (or NaN).
export function value(m, name, want) {
	const s = (m.get(name) || []).find((x) => matches(x.labels, want));
	return s ? s.value : NaN;
}

export function samples(m, name) {
	return m.get(name) || [];
}

// A histogram's cumulative buckets [{le, count}], sorted by le.
export function buckets(m, name, want) {
	return samples(m, `${name}_bucket`)
		.filter((s) => matches(s.labels, want))
		.map((s) => ({le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value}))
		.sort((a, b) => a.le - b.le);
}

// What happened between two readings of one histogram (b minus a, bucket by bucket).
export function delta(a, b) {
	if (!a || a.length !== b.length) return b;
	return b.map((x, i) => ({le: x.le, count: x.count - a[i].count}));
}

// The q-quantile (0..1) of cumulative buckets, interpolating linearly inside a bucket; NaN
// without observations. A quantile in the +Inf bucket answers the last finite bound.
export function quantile(q, bs) {
	if (!bs.length) return NaN;
	const total = bs[bs.length - 1].count;
	if (!(total > 0)) return NaN;
	const rank = q * total;
	let prevLe = 0, prevCount = 0;
	for (const b of bs) {
		if (b.count >= rank) {
			if (b.le === Infinity) return prevLe;
			const inBucket = b.count - prevCount;
			return inBucket > 0 ? prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket : b.le;
		}
		prevLe = b.le;
		prevCount = b.count;
	}
	return prevLe;
}
