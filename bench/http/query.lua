-- query.lua -- wrk script: named point queries on kappa,
-- GET /views/KB_VIEW/queries/KB_QUERY?stream=s-<k> with k random in 1..KB_STREAMS.
-- The requests are built once per thread and replayed.
package.path = (os.getenv("KB_LUA_DIR") or ".") .. "/?.lua;" .. package.path
require("common")

local streams = tonumber(os.getenv("KB_STREAMS") or "10000")
local path = "/views/" .. (os.getenv("KB_VIEW") or "counts") .. "/queries/" ..
	(os.getenv("KB_QUERY") or "by_stream") .. "?stream=s-"
local reqs, nreqs, i = {}, 4096, 0

function init(args)
	math.randomseed(id * 7919 + os.time())
	for j = 1, nreqs do
		reqs[j] = wrk.format("GET", path .. math.random(1, streams))
	end
end

function request()
	i = i % nreqs + 1
	return reqs[i]
end
