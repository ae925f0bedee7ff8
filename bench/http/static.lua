-- static.lua -- wrk script for the HTTP ceiling (nginx): plain GET / (wrk's own static
-- request, no per-request Lua), with common.lua's `done` for the figures.
package.path = (os.getenv("KB_LUA_DIR") or ".") .. "/?.lua;" .. package.path
require("common")
