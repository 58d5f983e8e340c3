/**
 * The chat view's page: HTML, CSS (VS Code's theme variables) and a small script that draws the state the extension
 * posts and posts back what the user does. Keyboard alone works: Enter sends, Shift+Enter starts a new line, Esc
 * cancels the running turn; every button is a real button.
 */

export function chatPage(nonce: string, cspSource: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<style nonce="${nonce}">${STYLE}</style></head>
<body>
<div id="bar">
  <label>Mode <select id="mode" aria-label="Approval mode"></select></label>
  <label>Model <select id="model" aria-label="Model"></select></label>
  <button id="sessions" title="Reopen a past session">Sessions</button>
  <button id="new" title="Start a new session">New</button>
</div>
<div id="sessionList" hidden></div>
<ul id="plan" aria-label="Plan"></ul>
<div id="log" role="log" aria-live="polite"></div>
<div id="composer">
  <textarea id="prompt" rows="3" aria-label="Ask Cove"
    placeholder="Ask Cove or give it a task (Enter sends, Shift+Enter new line, Esc cancels, / for commands, @file)"></textarea>
  <div id="commands"></div>
</div>
<script nonce="${nonce}">${SCRIPT}</script>
</body></html>`;
}

const STYLE = `
body { padding: 0 8px; color: var(--vscode-foreground); font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); display: flex; flex-direction: column; height: 100vh; margin: 0; }
#bar { display: flex; gap: 6px; align-items: center; padding: 6px 0; flex-wrap: wrap; }
select, textarea { background: var(--vscode-input-background); color: var(--vscode-input-foreground); border: 1px solid var(--vscode-input-border, transparent); }
button { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); border: none; padding: 2px 8px; cursor: pointer; }
button.primary { background: var(--vscode-button-background); color: var(--vscode-button-foreground); }
button:focus, select:focus, textarea:focus { outline: 1px solid var(--vscode-focusBorder); }
#log { flex: 1; overflow-y: auto; }
.user { margin: 8px 0; padding: 4px 6px; background: var(--vscode-textBlockQuote-background); border-left: 3px solid var(--vscode-textLink-foreground); white-space: pre-wrap; }
.agent { margin: 6px 0; white-space: pre-wrap; }
.thought { color: var(--vscode-descriptionForeground); font-size: 90%; white-space: pre-wrap; }
.error { color: var(--vscode-errorForeground); white-space: pre-wrap; }
pre { background: var(--vscode-textCodeBlock-background); padding: 4px; overflow-x: auto; white-space: pre-wrap; }
details.tool { margin: 4px 0; border: 1px solid var(--vscode-panel-border); padding: 2px 6px; }
details.tool summary { cursor: pointer; }
.status-failed { color: var(--vscode-errorForeground); }
.status-completed { color: var(--vscode-testing-iconPassed, inherit); }
.permission { margin: 6px 0; padding: 6px; border: 1px solid var(--vscode-focusBorder); }
.permission button { margin: 4px 4px 0 0; }
#plan { margin: 0; padding-left: 18px; }
#plan li.completed { text-decoration: line-through; color: var(--vscode-descriptionForeground); }
#plan li.in_progress { font-weight: bold; }
#composer textarea { width: 100%; box-sizing: border-box; resize: vertical; font-family: inherit; }
#commands { color: var(--vscode-descriptionForeground); font-size: 90%; min-height: 1em; }
#sessionList button { display: block; width: 100%; text-align: left; margin: 2px 0; }
`;

const SCRIPT = `
const vscode = acquireVsCodeApi();
const $ = (id) => document.getElementById(id);
let state = { entries: [], plan: [], commands: [], modes: [], mode: '', models: [], model: '', running: false };
const escape = (text) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
function markdown(text) {
  return text.split(/\`\`\`[^\\n]*\\n?/).map((part, i) => i % 2 ? '<pre>' + escape(part) + '</pre>'
    : escape(part).replace(/\`([^\`]+)\`/g, '<code>$1</code>').replace(/\\*\\*([^*]+)\\*\\*/g, '<b>$1</b>')).join('');
}
function entryHtml(entry, index) {
  switch (entry.kind) {
    case 'user': return '<div class="user">' + escape(entry.text) + '</div>';
    case 'agent': return '<div class="agent">' + markdown(entry.text) + '</div>';
    case 'thought': return '<div class="thought">' + escape(entry.text) + '</div>';
    case 'error': return '<div class="error">' + escape(entry.text) + '</div>';
    case 'tool': {
      const diffs = entry.diffs.map((d, i) => '<button data-diff="' + index + ':' + i + '">Open diff of ' + escape(d.path.split('/').pop()) + '</button>').join('');
      return '<details class="tool" data-tool="' + escape(entry.id) + '" data-status="' + entry.status + '"><summary>' + escape(entry.toolKind) + ': ' + escape(entry.title)
        + ' <span class="status-' + entry.status + '">(' + entry.status + ')</span></summary>' + diffs
        + (entry.output ? '<pre>' + escape(entry.output) + '</pre>' : '') + '</details>';
    }
    case 'permission': {
      if (entry.answered) return '<div class="thought">' + escape(entry.title) + ': ' + escape(entry.answered) + '</div>';
      return '<div class="permission" data-permission="' + entry.id + '"><div>' + escape(entry.title) + '</div>'
        + entry.options.map((o, i) => '<button class="' + (i === 0 ? 'primary' : '') + '" data-answer="' + entry.id + '" data-option="' + escape(o.optionId) + '">' + escape(o.name) + '</button>').join('') + '</div>';
    }
  }
  return '';
}
function options(select, items, current) {
  select.innerHTML = items.map((i) => '<option value="' + escape(i.value) + '"' + (i.value === current ? ' selected' : '') + '>' + escape(i.name) + '</option>').join('');
  select.disabled = items.length < 2;
}
function render() {
  const log = $('log');
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const open = new Set([...log.querySelectorAll('details[open]')].map((d) => d.dataset.tool));
  log.innerHTML = state.entries.map(entryHtml).join('');
  for (const details of log.querySelectorAll('details')) if (open.has(details.dataset.tool)) details.open = true;
  if (atEnd) log.scrollTop = log.scrollHeight;
  $('plan').innerHTML = state.plan.map((p) => '<li class="' + p.status + '">' + escape(p.content) + '</li>').join('');
  options($('mode'), state.modes.map((m) => ({ value: m.id, name: m.name })), state.mode);
  options($('model'), state.models, state.model);
  document.body.dataset.running = String(state.running);
  const typed = $('prompt').value;
  $('commands').textContent = typed.startsWith('/') ? state.commands.filter((c) => ('/' + c.name).startsWith(typed.split(' ')[0])).map((c) => '/' + c.name + ': ' + c.description).join('   ') : '';
  const ask = document.querySelector('[data-answer]');
  if (ask && document.activeElement === $('prompt') && !typed) ask.focus();
}
window.addEventListener('message', (event) => {
  const message = event.data;
  if (message.type === 'state') { state = message.state; render(); }
  if (message.type === 'sessions') {
    const list = $('sessionList');
    list.hidden = false;
    list.innerHTML = message.sessions.length ? message.sessions.map((s) => '<button data-load="' + escape(s.sessionId) + '">' + escape((s.title || s.sessionId) + ' — ' + (s.updatedAt || '')) + '</button>').join('') : '<div class="thought">No past sessions in this folder.</div>';
  }
  if (message.type === 'prompt') { $('prompt').value = message.text; $('prompt').focus(); render(); }
});
$('prompt').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    const text = $('prompt').value.trim();
    if (text && !state.running) { vscode.postMessage({ type: 'send', text }); $('prompt').value = ''; }
  } else if (event.key === 'Escape') {
    vscode.postMessage({ type: 'cancel' });
  }
});
$('prompt').addEventListener('input', render);
document.addEventListener('keydown', (event) => { if (event.key === 'Escape' && state.running) vscode.postMessage({ type: 'cancel' }); });
$('mode').addEventListener('change', () => vscode.postMessage({ type: 'mode', id: $('mode').value }));
$('model').addEventListener('change', () => vscode.postMessage({ type: 'model', value: $('model').value }));
$('sessions').addEventListener('click', () => vscode.postMessage({ type: 'sessions' }));
$('new').addEventListener('click', () => vscode.postMessage({ type: 'new' }));
document.addEventListener('click', (event) => {
  const target = event.target.closest('button');
  if (!target) return;
  if (target.dataset.answer) vscode.postMessage({ type: 'answer', id: Number(target.dataset.answer), optionId: target.dataset.option });
  if (target.dataset.diff) { const [entry, diff] = target.dataset.diff.split(':').map(Number); vscode.postMessage({ type: 'diff', entry, diff }); }
  if (target.dataset.load) { $('sessionList').hidden = true; vscode.postMessage({ type: 'load', sessionId: target.dataset.load }); }
});
vscode.postMessage({ type: 'ready' });
`;
