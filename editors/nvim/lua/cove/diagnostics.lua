-- `cove/diagnostics`: the problems Neovim shows for a buffer (every source's: linters, other language servers),
-- for the server, which passes them to an agent run in progress as a system reminder ("calc.py now has 2
-- error(s): ..."). One libuv timer batches a burst of changes; each changed buffer is sent once, to a running
-- Cove client attached to it, and a failure to send is silent (the run sees the problem when it runs the tests).
local M = {}

--- How long a buffer's problems must stay unchanged before they are sent: a linter run updates in bursts.
M.debounce_ms = 500

local timer = nil
local pending = {}

--- Send the problems of `bufnr` as they are now, if Cove serves the buffer.
function M.send(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) then
    return
  end
  local c = require("cove").client(bufnr)
  if not c or not c.initialized or c:is_stopped() then
    return
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    diagnostics = vim.lsp.diagnostic.from(vim.diagnostic.get(bufnr)),
  }
  pcall(c.notify, c, "cove/diagnostics", params)
end

local function flush()
  local buffers = vim.tbl_keys(pending)
  pending = {}
  for _, bufnr in ipairs(buffers) do
    M.send(bufnr)
  end
end

function M.setup()
  if timer == nil then
    timer = vim.uv.new_timer()
  end
  vim.api.nvim_create_autocmd("DiagnosticChanged", {
    group = vim.api.nvim_create_augroup("cove.diagnostics", { clear = true }),
    callback = function(event)
      pending[event.buf] = true
      timer:stop()
      timer:start(M.debounce_ms, 0, vim.schedule_wrap(flush))
    end,
  })
end

return M
