-- :CoveAsk, :CoveExplain, :CoveFix, :CoveAgent, :CoveUndo, :CoveTranscript, :CoveApprove, :CoveReject, :CoveCancel.
-- Every command is a request to the server; long ones show their progress through LspProgress (see init.lua).
local M = {}

local function client()
  local c = require("cove").client(0) or vim.lsp.get_clients({ name = "cove" })[1]
  if not c then
    vim.notify("Cove: the language server is not attached to this buffer", vim.log.levels.WARN)
  end
  return c
end

--- Show text in a scratch buffer in a split (answers, transcripts).
function M.show(title, text)
  local bufnr = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, vim.split("# " .. title .. "\n\n" .. text, "\n", { plain = true }))
  vim.bo[bufnr].filetype = "markdown"
  vim.cmd("botright split")
  vim.api.nvim_win_set_buf(0, bufnr)
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
        M.execute(resolved.command.command, resolved.command.arguments, function(result)
          if result and result.answer and result.answer ~= "" then
            M.show(chosen.title, result.answer)
          end
        end)
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
    M.execute("cove.ask", { opts.args }, function(result) M.show("Cove: " .. opts.args, result.answer) end)
  end, { nargs = "+", desc = "Ask Cove about the repository" })
  create("CoveAgent", function(opts)
    M.execute("cove.agent", { opts.args }, function(result)
      vim.notify("Cove: " .. result.stopped .. (result.answer ~= "" and (": " .. result.answer) or ""))
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
  create("CoveTranscript", function()
    M.execute("cove.transcript", {}, function(result) M.show("Cove transcript", result.text) end)
  end, {})
  create("CoveApprove", function() M.execute("cove.approvePlan", {}) end, {})
  create("CoveReject", function(opts) M.execute("cove.rejectPlan", { opts.args }) end, { nargs = "*" })
  create("CoveCancel", function() M.execute("cove.cancel", {}) end, {})
end

return M
