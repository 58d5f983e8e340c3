-- `cove/yanked`: the lines the user yanks, for the server's ring of recently seen code, from which completions
-- take the pieces that share names with the code at the cursor (as llama.vim does with yanked text). Deletes and
-- changes are not sent: they are edits, which the server sees through didChange. A hint: a failure is silent.
local M = {}

--- Tell the server that lines `first` to `last` (0-based) of buffer `bufnr` were yanked, if Cove serves it.
function M.send(bufnr, first, last)
  local c = require("cove").client(bufnr)
  if not c or not c.initialized or c:is_stopped() then
    return
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = first, character = 0 }, ["end"] = { line = last, character = 0 } },
  }
  pcall(c.notify, c, "cove/yanked", params)
end

function M.setup()
  vim.api.nvim_create_autocmd("TextYankPost", {
    group = vim.api.nvim_create_augroup("cove.yank", { clear = true }),
    callback = function(event)
      if vim.v.event.operator ~= "y" then
        return
      end
      -- The marks '[ and '] hold the yanked text's first and last positions (1-based lines).
      local first = vim.api.nvim_buf_get_mark(event.buf, "[")[1]
      local last = vim.api.nvim_buf_get_mark(event.buf, "]")[1]
      if first > 0 and last >= first then
        M.send(event.buf, first - 1, last - 1)
      end
    end,
  })
end

return M
