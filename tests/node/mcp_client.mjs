#!/usr/bin/env node
// Minimal MCP stdio client built on the official TypeScript SDK (the one Claude Code uses).
//
// Usage:
//   node tests/node/mcp_client.mjs --tool NAME [--args JSON] [--tool NAME [--args JSON] ...] -- COMMAND [ARGS...]
//
// Spawns COMMAND as an MCP stdio server, lists its tools, calls each --tool in order
// (with the --args that follow it, default {}), and prints ONE JSON line to stdout:
//   {"serverName": ..., "tools": [{"name", "hasOutputSchema", "readOnlyHint"}],
//    "results": [{"isError", "structuredContent", "text"}, ...]}
// Exits 0 on success (a tool result with isError: true still counts as success);
// on any failure prints the error to stderr and exits 1.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const REQUEST_TIMEOUT_MS = 60_000;

function parseArgs(argv) {
  const sep = argv.indexOf("--");
  if (sep === -1 || sep === argv.length - 1) throw new Error("missing '-- COMMAND [ARGS...]'");
  const [command, ...commandArgs] = argv.slice(sep + 1);
  const calls = [];
  const opts = argv.slice(0, sep);
  for (let i = 0; i < opts.length; i += 2) {
    const [flag, value] = [opts[i], opts[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--tool") calls.push({ name: value, arguments: {} });
    else if (flag === "--args" && calls.length) calls.at(-1).arguments = JSON.parse(value);
    else throw new Error(`unexpected argument ${flag} (--args must follow a --tool)`);
  }
  if (!calls.length) throw new Error("at least one --tool is required");
  return { command, commandArgs, calls };
}

async function main() {
  const { command, commandArgs, calls } = parseArgs(process.argv.slice(2));
  const transport = new StdioClientTransport({
    command,
    args: commandArgs,
    env: process.env,
    stderr: "inherit",
  });
  const client = new Client({ name: "session-search-node-test", version: "0.0.0" });
  await client.connect(transport);
  try {
    const tools = [];
    let cursor;
    do {
      const page = await client.listTools(cursor ? { cursor } : undefined, { timeout: REQUEST_TIMEOUT_MS });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);

    const results = [];
    for (const call of calls) {
      const res = await client.callTool(call, undefined, { timeout: REQUEST_TIMEOUT_MS });
      results.push({
        isError: res.isError === true,
        structuredContent: res.structuredContent ?? null,
        text: (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n"),
      });
    }

    console.log(JSON.stringify({
      serverName: client.getServerVersion()?.name ?? null,
      tools: tools.map((t) => ({
        name: t.name,
        hasOutputSchema: t.outputSchema != null,
        readOnlyHint: t.annotations?.readOnlyHint ?? null,
      })),
      results,
    }));
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`mcp_client: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
