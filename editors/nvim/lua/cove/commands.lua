-- :CoveAsk, :CoveExplain, :CoveFix, :CoveAgent, :CoveUndo, :CoveTranscript, :CoveApprove, :CoveReject, :CoveCancel,
-- :CoveContext, :CoveDocstring, :CoveTests, :CoveCommitMessage (the last three served by the local model when no chat model is set).
-- Every command is a request to the server; long ones show their progress through LspProgress (see init.lua).
local M = {}

local function client()
  local c = require("cove").client(0) or vim.lsp.get_clients({ name = "cove" })[1]
  if not c then
    vim.notify("Cove: the language server is not attached to this buffer", vim.log.levels.WARN)
  end
  return c
end

-- Answers show once: by the server's window/showDocument (kept on, or fixes apply unseen), never by a command here.

--- The Cove window in this tab (the split that shows the server's documents), if open.
local function document_window()
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.b[vim.api.nvim_win_get_buf(win)].cove_document then
      return win
    end
  end
end

--- window/showDocument from the server: the file it wrote (an answer, a plan, a diff) read afresh into a scratch
--- buffer in one split (reused), `q` to close; focused only when the server asks. Other documents: Neovim's handler.
function M.show_document(err, params, ctx, config)
  local path = not params.external and vim.startswith(params.uri, "file:") and vim.uri_to_fname(params.uri)
  if not path or vim.fn.filereadable(path) == 0 then
    return vim.lsp.handlers["window/showDocument"](err, params, ctx, config)
  end
  M.show_lines(vim.fn.readfile(path), vim.filetype.match({ filename = path }) or "markdown", path, params.takeFocus)
  return { success = true }
end

--- `lines` in a scratch buffer in Cove's one split (reused), `q` to close; focused when `focus`.
function M.show_lines(lines, filetype, name, focus)
  local bufnr = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.bo[bufnr].filetype = filetype
  vim.bo[bufnr].bufhidden = "wipe"
  vim.b[bufnr].cove_document = name
  vim.keymap.set("n", "q", "<cmd>close<CR>", { buffer = bufnr, nowait = true, desc = "Close Cove's window" })
  local previous = vim.api.nvim_get_current_win()
  local win = document_window()
  if not win then
    vim.cmd("botright split")
    win = vim.api.nvim_get_current_win()
  end
  vim.api.nvim_win_set_buf(win, bufnr)
  vim.api.nvim_set_current_win(focus and win or previous)
end

--- :CoveContext: the workspace context a completion at the cursor gets now (imported and indexed definitions,
--- code yanked, viewed or saved lately, the index's neighbours, enclosing headers), in Cove's split.
function M.show_context()
  local c = client()
  if not c then
    return
  end
  local params = vim.lsp.util.make_position_params(0, c.offset_encoding)
  local filetype = vim.bo.filetype
  M.execute("cove.showContext", { params.textDocument.uri, params.position }, function(result)
    local text = result.context ~= "" and result.context or "(no workspace context at this place)"
    M.show_lines(vim.split(text, "\n", { trimempty = true }), filetype, "cove://context", false)
  end)
end

--- Run a server command; `done(result)` gets its result.
function M.execute(command, arguments, done)
  local c = client()
  if not c then
    return
  end
  c:request("workspace/executeCommand", { command = command, arguments = arguments }, function(err, result)
    if err then
      vim.notify(err.message, vim.log.levels.ERROR)
    elseif done then
      done(result)
    end
  end, 0)
end

--- The Cove code action whose title starts with `prefix` at the cursor (or selection): resolved by the agent,
--- then its command run (the server shows the diff, asks, and applies the edit).
function M.code_action(prefix, range)
  local c = client()
  if not c then
    return
  end
  local params = range or vim.lsp.util.make_range_params(0, c.offset_encoding)
  local line = params.range.start.line
  params.context = { diagnostics = vim.lsp.diagnostic.from(vim.diagnostic.get(0, { lnum = line })) }
  c:request("textDocument/codeAction", params, function(err, actions)
    if err then
      vim.notify(err.message, vim.log.levels.ERROR)
      return
    end
    local chosen
    for _, action in ipairs(actions or {}) do
      if not chosen and vim.startswith(action.title, prefix) then
        chosen = action
      end
    end
    if not chosen then
      vim.notify("Cove: no '" .. prefix .. "' action here", vim.log.levels.WARN)
      return
    end
    c:request("codeAction/resolve", chosen, function(resolve_err, resolved)
      if resolve_err then
        vim.notify(resolve_err.message, vim.log.levels.ERROR)
        return
      end
      if resolved.command then
        M.execute(resolved.command.command, resolved.command.arguments)
      end
    end, 0)
  end, 0)
end

local function selection_range(opts)
  if opts.range == 0 then
    return nil
  end
  local c = require("cove").client(0)
  if not c then
    return nil
  end
  return vim.lsp.util.make_given_range_params({ opts.line1, 0 }, { opts.line2, math.huge }, 0, c.offset_encoding)
end

function M.setup()
  local create = vim.api.nvim_create_user_command
  create("CoveAsk", function(opts)
    M.execute("cove.ask", { opts.args })
  end, { nargs = "+", desc = "Ask Cove about the repository" })
  create("CoveAgent", function(opts)
    M.execute("cove.agent", { opts.args }, function(result)
      vim.notify("Cove: " .. result.stopped)
      vim.cmd.checktime()
    end)
  end, { nargs = "+", desc = "Run an agent task in this project" })
  create("CoveExplain", function(opts) M.code_action("Cove: explain", selection_range(opts)) end, { range = true })
  create("CoveFix", function() M.code_action("Cove: fix") end, { desc = "Fix the diagnostic at the cursor" })
  create("CoveUndo", function()
    M.execute("cove.undo", {}, function(result)
      vim.notify("Cove: " .. result.text)
      vim.cmd.checktime()
    end)
  end, {})
  create("CoveTranscript", function() M.execute("cove.transcript", {}) end, {})
  create("CoveApprove", function() M.execute("cove.approvePlan", {}) end, {})
  create("CoveReject", function(opts) M.execute("cove.rejectPlan", { opts.args }) end, { nargs = "*" })
  create("CoveCancel", function() M.execute("cove.cancel", {}) end, {})
  create("CoveDocstring", function() M.code_action("Cove: add a docstring") end, { desc = "Document the function" })
  create("CoveTests", function() M.code_action("Cove: write tests") end, { desc = "Write tests for the function" })
  create("CoveContext", M.show_context, { desc = "Show the workspace context a completion at the cursor gets" })
  create("CoveCommitMessage", function() M.commit_message(vim.api.nvim_get_current_buf()) end, {
    desc = "A commit message for the staged changes, into this gitcommit buffer (or shown)",
  })
end

--- `cove.commitMessage` for the repository of the current directory: in a gitcommit buffer, the subject goes on
--- its first line (to review before :wq); elsewhere it is shown.
function M.commit_message(bufnr)
  M.execute("cove.commitMessage", { vim.fn.getcwd() }, function(result)
    if vim.bo[bufnr].filetype == "gitcommit" and vim.api.nvim_buf_is_valid(bufnr) then
      vim.api.nvim_buf_set_lines(bufnr, 0, 0, false, { result.message })
    else
      vim.notify("Cove: " .. result.message)
    end
  end)
end

return M
