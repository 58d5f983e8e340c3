-- Headless Neovim 0.11: open a file, attach Cove with vim.lsp.config/enable, ask for an inline completion and print
-- the reply as JSON. Neovim 0.11 has no vim.lsp.inline_completion (0.12 does), so the request is sent directly.
-- Inputs come from the environment: COVE_TEST_CMD (JSON list), COVE_TEST_FILE, COVE_TEST_LINE (1-based),
-- COVE_TEST_COL (0-based byte column).
local cmd = vim.json.decode(os.getenv("COVE_TEST_CMD"))
local file = os.getenv("COVE_TEST_FILE")
local line = tonumber(os.getenv("COVE_TEST_LINE"))
local col = tonumber(os.getenv("COVE_TEST_COL"))

vim.lsp.config("cove", {
  cmd = cmd,
  filetypes = { "python" },
  root_markers = { ".git" },
  capabilities = { textDocument = { inlineCompletion = { dynamicRegistration = false } } },
})
vim.lsp.enable("cove")
vim.cmd.edit(file)
vim.bo.filetype = "python" -- `-l` mode does not run filetype detection

local function cove_client()
  return vim.lsp.get_clients({ name = "cove", bufnr = 0 })[1]
end
if not vim.wait(30000, function() return cove_client() ~= nil and cove_client().initialized end, 50) then
  io.stderr:write("cove did not attach\n")
  os.exit(2)
end
local client = cove_client()

vim.api.nvim_win_set_cursor(0, { line, col })
local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
params.context = { triggerKind = 2 }
local response, err = client:request_sync("textDocument/inlineCompletion", params, 60000, 0)
if not response then
  io.stderr:write("no response: " .. tostring(err) .. "\n")
  os.exit(3)
end
io.stdout:write(vim.json.encode({
  advertised = client.server_capabilities.inlineCompletionProvider ~= nil,
  root = client.root_dir,
  result = response.result,
  error = response.err,
}) .. "\n")
client:stop()
vim.wait(5000, function() return client:is_stopped() end, 50)
os.exit(0)
