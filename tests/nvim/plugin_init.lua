-- Loads the plugin from editors/nvim as a user's init.lua would (for tests/nvim/test_plugin.py).
vim.opt.rtp:prepend(os.getenv("COVE_PLUGIN_DIR"))
require("cove").setup({
  cmd = vim.json.decode(os.getenv("COVE_TEST_CMD")),
  filetypes = { "python" },
  debounce_ms = 30,
  auto_approve = os.getenv("COVE_AUTO_APPROVE") == "1",
})
