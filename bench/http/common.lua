-- common.lua -- shared by the wrk scripts of bench/http: thread numbering and a `done`
-- that prints the figures run.sh reads as one line, "WRK {json}", after wrk's own report.
-- Latencies are wrk's (microseconds, from request sent to response read).

local threads = {}
local counter = 0

function setup(thread)
	counter = counter + 1
	thread:set("id", counter)
	table.insert(threads, thread)
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		'WRK {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.1f,' ..
		'"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"p999_us":%.1f,"max_us":%.1f,"mean_us":%.1f,' ..
		'"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
		summary.requests, summary.duration, summary.bytes,
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9), latency.max, latency.mean,
		e.connect, e.read, e.write, e.status, e.timeout))
end
