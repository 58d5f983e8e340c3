-- :checkhealth cove
local M = {}

function M.check()
  local health = vim.health
  health.start("cove")
  if vim.fn.has("nvim-0.11") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim 0.11 or newer is needed (vim.lsp.config)")
  end
  local cmd = require("cove").config.cmd
  local executable = cmd[1]
  if vim.fn.executable(executable) == 1 then
    -- The configured command without its last word ("lsp"), asked for its version.
    local version_cmd = vim.list_slice(cmd, 1, cmd[#cmd] == "lsp" and #cmd - 1 or #cmd)
    table.insert(version_cmd, "--version")
    local version = vim.system(version_cmd, { text = true }):wait(15000)
    if version.code == 0 then
      health.ok("cove: " .. vim.trim(version.stdout))
    else
      health.error("`" .. executable .. " --version` failed: " .. vim.trim(version.stderr or ""))
    end
  else
    health.error("the cove executable is not found: " .. executable, { "run scripts/setup, then set cmd in setup{}" })
  end
  if vim.lsp.inline_completion then
    health.ok("ghost text: native vim.lsp.inline_completion")
  else
    health.ok("ghost text: extmarks (Neovim 0.11)")
  end
  local clients = vim.lsp.get_clients({ name = "cove" })
  -- What the running client sent, else what Neovim would send.
  local window = (clients[1] and clients[1].capabilities or vim.lsp.protocol.make_client_capabilities()).window or {}
  if window.showDocument and window.showDocument.support then
    health.ok("answers, plans and diffs: shown by the server (window/showDocument) in a split, `q` closes it")
  else
    health.warn("this Neovim does not advertise window/showDocument: answers come as messages, diffs are not shown")
  end
  if #clients > 0 then
    health.ok("the cove language server is running (" .. tostring(clients[1].root_dir) .. ")")
    -- Who serves completions ([routing] complete), and why any server in the chain is passed over.
    local reply = clients[1]:request_sync("workspace/executeCommand", { command = "cove.status", arguments = {} }, 5000)
    local result = reply and reply.result or {}
    local completions = result.completions
    if completions then
      health.ok("completions: " .. completions.serving)
      if completions.model then
        health.ok(("model: %s (set by %s)"):format(completions.model.path, completions.model.chosen_by))
      end
      for _, target in ipairs(completions.targets or {}) do
        if target.state ~= "ready" then
          -- skipped: it failed lately and the server tries it again after a while; unavailable: not set up.
          health.warn(
            ("completions: fell back: %s is %s: %s"):format(target.name, target.state, target.reason),
            { "`cove doctor` checks the servers of [routing] complete" }
          )
        end
      end
    else
      health.warn("the server did not say who serves completions: " .. vim.inspect(reply and reply.err))
    end
    if result.warm then
      health.info(("cursor places (cove/cursor): %d received, %d prefilled while idle"):format(
        result.warm.requested or 0,
        result.warm.prefilled or 0
      ))
    end
  else
    health.info("no cove language server is running yet; it starts when you open a file")
  end
end

return M
