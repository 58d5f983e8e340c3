local util = require('cove.util')

local M = {}

function M.setup(opts)
  M.opts = util.merge(opts)
end

function M:complete(line)
  return self.opts.model(line)
end

local function debounce(fn)
  return fn
end

return M
