-- `cove/cursor`: where the cursor rests, for the server, which prefills the model's window there while the user
-- is idle, so that the first suggestion at that place comes fast. One libuv timer debounces the moves; the
-- notification goes only to a running Cove client attached to the buffer, and a failure to send it is silent
-- (it is a hint: the next completion just starts cold).
local M = {}

--- How long the cursor must rest before the server is told: moves while scrolling or typing are not sent.
M.debounce_ms = 200

local timer = nil

--- Tell the server where the cursor is in the current window, if Cove serves its buffer.
function M.send()
  local bufnr = vim.api.nvim_get_current_buf()
  local c = require("cove").client(bufnr) -- only clients attached to this buffer (didOpen sent)
  if not c or not c.initialized or c:is_stopped() then
    return
  end
  -- The URI as didOpen sent it, the position in the negotiated encoding: what every request here uses.
  local params = vim.lsp.util.make_position_params(0, c.offset_encoding)
  pcall(c.notify, c, "cove/cursor", params)
end

local function settle()
  timer:stop()
  timer:start(M.debounce_ms, 0, vim.schedule_wrap(M.send))
end

function M.setup()
  if timer == nil then
    timer = vim.uv.new_timer()
  end
  local group = vim.api.nvim_create_augroup("cove.cursor", { clear = true })
  vim.api.nvim_create_autocmd({ "CursorMoved", "CursorMovedI", "BufEnter", "FocusGained" }, {
    group = group,
    callback = settle,
  })
  -- The cursor rests where the file opened until the server attaches: tell it then.
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(event)
      local c = vim.lsp.get_client_by_id(event.data.client_id)
      if c and c.name == "cove" and event.buf == vim.api.nvim_get_current_buf() then
        settle()
      end
    end,
  })
end

return M
