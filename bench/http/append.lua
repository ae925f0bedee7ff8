-- append.lua -- wrk script: durable appends to kappa, POST /streams/s-<k> with k random in
-- 1..KB_STREAMS, KB_BATCH events per request ({"type":"Tick","data":{"n":...}}).
-- With KB_REQUEST_ID=1 every request carries a unique request_id (prefix KB_NONCE, so a
-- warm-up and the measured run never reuse one), which makes the server look it up and
-- record it for deduplication. Without it the requests are built once per thread and
-- replayed, so the load generator spends as little CPU as possible.
package.path = (os.getenv("KB_LUA_DIR") or ".") .. "/?.lua;" .. package.path
require("common")

local streams = tonumber(os.getenv("KB_STREAMS") or "10000")
local batch = tonumber(os.getenv("KB_BATCH") or "1")
local with_rid = os.getenv("KB_REQUEST_ID") == "1"
local nonce = os.getenv("KB_NONCE") or tostring(os.time())
local headers = {["Content-Type"] = "application/json"}
local reqs, nreqs, i, seq = {}, 1024, 0, 0

local function events(n)
	local t = {}
	for j = 1, batch do
		t[j] = string.format('{"type":"Tick","data":{"n":%d}}', n + j)
	end
	return table.concat(t, ",")
end

function init(args)
	math.randomseed(id * 7919 + os.time())
	if with_rid then
		return
	end
	for j = 1, nreqs do
		local body = '{"events":[' .. events(math.random(1, 1000000)) .. ']}'
		reqs[j] = wrk.format("POST", "/streams/s-" .. math.random(1, streams), headers, body)
	end
end

function request()
	if with_rid then
		seq = seq + 1
		local body = '{"request_id":"' .. nonce .. "-" .. id .. "-" .. seq ..
			'","events":[' .. events(seq) .. ']}'
		return wrk.format("POST", "/streams/s-" .. math.random(1, streams), headers, body)
	end
	i = i % nreqs + 1
	return reqs[i]
end
