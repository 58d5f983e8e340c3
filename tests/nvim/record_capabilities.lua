-- Print the client capabilities of this Neovim as JSON, with inlineCompletion declared as Cove's plugin declares it.
-- Run: nvim --headless --clean -l tests/nvim/record_capabilities.lua > tests/data/neovim_v0.11.4_inline.json
local capabilities = vim.lsp.protocol.make_client_capabilities()
capabilities.textDocument.inlineCompletion = { dynamicRegistration = false }
local v = vim.version()
io.stdout:write(vim.json.encode({
  clientInfo = { name = "Neovim", version = string.format("%d.%d.%d", v.major, v.minor, v.patch) },
  capabilities = capabilities,
}))
io.stdout:write("\n")
