-- Cove for Neovim: the `cove lsp` server registered with vim.lsp.config/enable, ghost text for its inline
-- completions, and commands for the agent's actions.
local M = {}

local defaults = {
  cmd = { "cove", "lsp" },
  filetypes = nil, -- nil: every filetype
  root_markers = { ".git", ".cove", "pyproject.toml" },
  settings = {}, -- sent as initializationOptions { cove = settings }: the sections of .cove/config.toml
  auto_trigger = true,
  debounce_ms = 75,
  keymaps = { accept = "<M-l>", next = "<M-]>", dismiss = "<C-]>" },
  -- Answer the server's "Apply Cove's change?" / approval questions without asking (for scripted use).
  auto_approve = false,
}

M.config = vim.deepcopy(defaults)
M.progress = ""

function M.client(bufnr)
  return vim.lsp.get_clients({ name = "cove", bufnr = bufnr or 0 })[1]
end

local function show_message_request(err, params, ctx)
  if M.config.auto_approve and params.actions and params.actions[1] then
    return params.actions[1]
  end
  return vim.lsp.handlers["window/showMessageRequest"](err, params, ctx)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  local config = M.config
  vim.lsp.config("cove", {
    cmd = config.cmd,
    filetypes = config.filetypes,
    root_markers = config.root_markers,
    init_options = { cove = config.settings },
    settings = { cove = config.settings },
    capabilities = { textDocument = { inlineCompletion = { dynamicRegistration = false } } },
    handlers = {
      ["window/showMessageRequest"] = show_message_request,
      ["window/showDocument"] = require("cove.commands").show_document,
      ["cove/suggestionReady"] = function(err, params, ctx)
        require("cove.ghost").suggestion_ready(err, params, ctx)
      end,
    },
  })
  vim.lsp.enable("cove")
  require("cove.ghost").setup(config)
  require("cove.cursor").setup()
  require("cove.yank").setup()
  require("cove.diagnostics").setup()
  require("cove.commands").setup()
  vim.api.nvim_create_autocmd("LspProgress", {
    group = vim.api.nvim_create_augroup("cove.progress", { clear = true }),
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if not client or client.name ~= "cove" then
        return
      end
      local value = event.data.params.value
      if value.kind == "end" then
        M.progress = ""
        if value.message then
          vim.notify("Cove: " .. value.message, vim.log.levels.INFO)
        end
      else
        M.progress = table.concat(vim.tbl_filter(function(part) return part ~= nil end, { value.title, value.message }), ": ")
      end
      vim.cmd.redrawstatus()
    end,
  })
end

--- For the statusline: what Cove is doing now ("" when idle).
function M.status()
  return M.progress
end

return M
