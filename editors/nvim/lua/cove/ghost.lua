-- Ghost text for Cove's inline completions. Neovim 0.12+ has vim.lsp.inline_completion and it is used; on 0.11 the
-- request is sent here on every change in insert mode (debounced; the previous request cancelled) and the items are
-- drawn with extmarks: the first line inline at the cursor, the others as virtual lines below.
local M = {}

local ns = vim.api.nvim_create_namespace("cove.ghost")
local state = { bufnr = nil, items = {}, index = 1, row = nil, col = nil, request = nil, timer = nil }

local function client(bufnr)
  return require("cove").client(bufnr)
end

function M.clear()
  if state.bufnr and vim.api.nvim_buf_is_valid(state.bufnr) then
    vim.api.nvim_buf_clear_namespace(state.bufnr, ns, 0, -1)
  end
  state.items, state.index = {}, 1
end

local function cancel()
  if state.request then
    local c, id = state.request[1], state.request[2]
    pcall(c.cancel_request, c, id)
    state.request = nil
  end
end

local function render()
  local bufnr = state.bufnr
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local item = state.items[state.index]
  if not item then
    return
  end
  local lines = vim.split(item.insertText, "\n", { plain = true })
  local extra = {}
  for i = 2, #lines do
    extra[#extra + 1] = { { lines[i], "Comment" } }
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, state.row, state.col, {
    virt_text = { { lines[1], "Comment" } },
    virt_text_pos = "inline",
    virt_lines = #extra > 0 and extra or nil,
  })
end

--- Ask for a suggestion at the cursor now.
function M.trigger()
  local bufnr = vim.api.nvim_get_current_buf()
  local c = client(bufnr)
  if not c then
    return
  end
  cancel()
  local cursor = vim.api.nvim_win_get_cursor(0)
  local params = vim.lsp.util.make_position_params(0, c.offset_encoding)
  params.context = { triggerKind = 2 }
  local ok, id = c:request("textDocument/inlineCompletion", params, function(err, result)
    state.request = nil
    if err or not result then
      return
    end
    local now = vim.api.nvim_win_get_cursor(0)
    if vim.api.nvim_get_current_buf() ~= bufnr or now[1] ~= cursor[1] or now[2] ~= cursor[2] then
      return -- the user moved on: a newer request is coming
    end
    local items = result.items or result
    state.bufnr, state.items, state.index = bufnr, {}, 1
    state.row, state.col = cursor[1] - 1, cursor[2]
    for _, item in ipairs(items) do
      if type(item.insertText) == "string" and item.insertText ~= "" then
        state.items[#state.items + 1] = item
      end
    end
    render()
  end, bufnr)
  if ok then
    state.request = { c, id }
  end
end

--- Insert the suggestion shown; returns whether there was one.
function M.accept()
  local item = state.items[state.index]
  if not item then
    return false
  end
  local bufnr, row, col = state.bufnr, state.row, state.col
  M.clear()
  local lines = vim.split(item.insertText, "\n", { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  local last_row = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  local c = client(bufnr)
  if c and item.command then
    c:request("workspace/executeCommand", { command = item.command.command, arguments = item.command.arguments }, function() end, bufnr)
  end
  return true
end

function M.next()
  if #state.items > 1 then
    state.index = state.index % #state.items + 1
    render()
  end
end

function M.visible()
  return state.items[state.index] ~= nil
end

--- `cove/suggestionReady` (`{textDocument = {uri}}`): the suggestion shown early at that buffer's cursor, while the
--- user typed on, is whole now. Ask again there if the user is still in insert mode in that buffer (the server
--- answers at once, without the model); otherwise there is nothing on screen to complete.
function M.suggestion_ready(_, params)
  local uri = type(params) == "table" and type(params.textDocument) == "table" and params.textDocument.uri
  local bufnr = vim.api.nvim_get_current_buf()
  if type(uri) ~= "string" or uri ~= vim.uri_from_bufnr(bufnr) or not vim.api.nvim_get_mode().mode:find("^i") then
    return
  end
  if vim.lsp.inline_completion == nil then
    M.trigger()
  end
end

function M.setup(config)
  local group = vim.api.nvim_create_augroup("cove.ghost", { clear = true })
  local native = vim.lsp.inline_completion ~= nil
  if native then
    vim.lsp.inline_completion.enable(true)
  elseif config.auto_trigger then
    vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, {
      group = group,
      callback = function()
        M.clear()
        if state.timer then
          state.timer:stop()
        end
        state.timer = vim.defer_fn(M.trigger, config.debounce_ms)
      end,
    })
    vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
      group = group,
      callback = function()
        cancel()
        M.clear()
      end,
    })
  end
  local keys = config.keymaps
  if keys.accept then
    vim.keymap.set("i", keys.accept, function()
      if native then
        return vim.lsp.inline_completion.get()
      end
      M.accept()
    end, { desc = "Cove: accept the suggestion" })
  end
  if keys.next then
    vim.keymap.set("i", keys.next, function()
      if native then
        return vim.lsp.inline_completion.select()
      end
      M.next()
    end, { desc = "Cove: next suggestion" })
  end
  if keys.dismiss then
    vim.keymap.set("i", keys.dismiss, function()
      cancel()
      M.clear()
    end, { desc = "Cove: dismiss the suggestion" })
  end
end

return M
