// A whole session with `cove acp` from the npm SDK's client side (@agentclientprotocol/sdk), as an editor written
// in TypeScript drives an agent: it starts the agent, answers permission requests from a list, serves fs/* from
// its buffers, and prints what it saw as one JSON report on stdout for tests/acp/test_npm_client.py to check.
//
//   node session.mjs ROOT  (the agent's command in COVE_ACP_COMMAND, as a JSON array)
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";

const root = process.argv[2];
const [command, ...args] = JSON.parse(process.env.COVE_ACP_COMMAND);
const calc = join(root, "calc.py");
const answers = ["reject", "allow-once"];
const report = { updates: [], permissions: [], writes: {}, reads: [], turns: [] };
const buffers = {};

const agent = spawn(command, args, { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
const stream = acp.ndJsonStream(Writable.toWeb(agent.stdin), Readable.toWeb(agent.stdout));

let onUpdate = () => {};
const app = acp
  .client({ name: "cove-npm-test" })
  .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
    report.permissions.push({ toolCallId: params.toolCall.toolCallId, options: params.options.map((o) => o.optionId) });
    return { outcome: { outcome: "selected", optionId: answers.shift() } };
  })
  .onRequest(acp.methods.client.fs.readTextFile, ({ params }) => {
    report.reads.push(params.path);
    return { content: buffers[params.path] ?? readFileSync(params.path, "utf8") };
  })
  .onRequest(acp.methods.client.fs.writeTextFile, ({ params }) => {
    report.writes[params.path] = params.content;
    buffers[params.path] = params.content;
    return {};
  })
  .onNotification(acp.methods.client.session.update, ({ params }) => {
    report.updates.push(params.update);
    onUpdate(params.update);
  });

async function turn(ctx, sessionId, text) {
  const from = report.updates.length;
  const done = await ctx.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text }] });
  // The SDK hands notifications to their handler asynchronously: those sent before the reply may come after it.
  await new Promise((resolve) => setTimeout(resolve, 100));
  report.turns.push({ text, stopReason: done.stopReason, updates: report.updates.slice(from) });
  return done;
}

await app.connectWith(stream, async (ctx) => {
  report.initialize = await ctx.request(acp.methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: false },
  });
  const session = await ctx.request(acp.methods.agent.session.new, { cwd: root, mcpServers: [] });
  report.session = session;
  const sessionId = session.sessionId;
  await turn(ctx, sessionId, "What does add() in calc.py do?");
  buffers[calc] = readFileSync(calc, "utf8").replace("return a - b", "return a - b  # unsaved in the editor");
  await turn(ctx, sessionId, "Fix add() in calc.py."); // rejected
  report.afterRejected = readFileSync(calc, "utf8");
  await turn(ctx, sessionId, "Fix add() in calc.py, please."); // allowed
  report.afterAllowed = readFileSync(calc, "utf8");
  await turn(ctx, sessionId, "/undo");
  report.afterUndo = readFileSync(calc, "utf8");
  report.list = await ctx.request(acp.methods.agent.session.list, { cwd: root });
  const replayedFrom = report.updates.length;
  await ctx.request(acp.methods.agent.session.load, { cwd: root, sessionId, mcpServers: [] });
  report.replayed = report.updates.slice(replayedFrom);
  await ctx.request(acp.methods.agent.session.setMode, { sessionId, modeId: "full-auto" });
  onUpdate = (update) => {
    if (update.sessionUpdate === "tool_call_update" && update.status === "in_progress") {
      onUpdate = () => {};
      report.cancelledAt = Date.now();
      ctx.notify(acp.methods.agent.session.cancel, { sessionId });
    }
  };
  await turn(ctx, sessionId, "Run the slow thing.");
  report.cancelWaitMs = Date.now() - report.cancelledAt;
  try {
    await ctx.request(acp.methods.agent.session.prompt, { sessionId: "no-such-session", prompt: [] });
  } catch (error) {
    report.unknownSession = { code: error.code, message: error.message };
  }
});

agent.stdin.end();
process.stdout.write(JSON.stringify(report));
