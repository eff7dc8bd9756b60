// owl runtime: the Node.js ActionLoop launcher (part of owl, Apache-2.0).
//
// Loads the action once, acknowledges on fd 3, then reads one JSON line per
// activation on stdin ({"value": params, "activation_id": ..., ...}), exports every
// other key as __OW_<KEY>, calls main(value) and writes the result as one JSON line on
// fd 3. stdout and stderr are the action's logs. Semantics follow OpenWhisk's Node.js
// runtime: a plain source file may define a global `main` or export it; a directory
// (an extracted zip) is required as a module; `undefined` becomes {}; a rejected
// promise becomes {"error": ...} (an application error); a synchronous throw is a
// developer error. Developer errors travel as {"__owl_developer_error": text}, a
// line only the owl runtime reads.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const Module = require('module');
const { pathToFileURL } = require('url');

const RESULT_FD = 3;

function send(obj) {
  let text;
  try {
    text = JSON.stringify(obj);
  } catch (e) {
    text = JSON.stringify({ __owl_developer_error: `An error has occurred: ${e}` });
  }
  if (text === undefined) text = 'null';
  const buf = Buffer.from(text + '\n', 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(RESULT_FD, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

// Resolves once everything written to `stream` so far has reached its pipe. Writes to
// a full pipe are queued inside Node; the runtime marks the end of an activation's log
// on the pipe itself as soon as it reads the result, so queued output would otherwise
// land after the mark, in the next activation's log. (The Python launcher flushes.)
function flushed(stream) {
  return new Promise((resolve) => {
    if (!stream.writableLength) return resolve();
    stream.write('', () => resolve());
  });
}

function initError(e) {
  return `Initialization has failed due to: ${e && e.stack ? String(e.stack) : e}`;
}

async function load(code, main) {
  const stat = fs.statSync(code);
  let exported;
  if (stat.isDirectory()) {
    if (!fs.existsSync(path.join(code, 'package.json')) && !fs.existsSync(path.join(code, 'index.js'))) {
      if (fs.existsSync(path.join(code, 'index.mjs'))) {
        exported = await import(pathToFileURL(path.join(code, 'index.mjs')).href);
      } else {
        throw 'Zipped actions must contain either package.json or index.js at the root.';
      }
    } else {
      exported = require(code);
    }
  } else if (code.endsWith('.mjs')) {
    exported = await import(pathToFileURL(code).href);
  } else {
    // Like OpenWhisk: the source may simply define a global `main`.
    const src = fs.readFileSync(code, 'utf8');
    const m = new Module(code, null);
    m.filename = code;
    m.paths = Module._nodeModulePaths(path.dirname(code));
    const probe = `\n;module.exports.__owl_main__ = (function () { try { return ${main}; } ` +
      `catch (e) { if (e instanceof ReferenceError) return undefined; throw e; } })();\n`;
    m._compile(src + probe, code);
    const found = m.exports.__owl_main__;
    delete m.exports.__owl_main__;
    if (typeof found === 'function') return found;
    exported = m.exports;
  }
  let handler = exported && exported[main];
  if (handler === undefined && exported && typeof exported.default === 'object') handler = exported.default[main];
  if (handler === undefined && typeof exported === 'function') handler = exported;
  if (typeof handler !== 'function') throw `Action entrypoint '${main}' is not a function.`;
  return handler;
}

function serializeError(e) {
  if (!(e instanceof Error)) return e;
  const out = { name: e.name, message: e.message, stack: e.stack };
  for (const k of Object.keys(e)) out[k] = e[k];
  return out;
}

async function run(handler, msg) {
  for (const k of Object.keys(msg)) {
    if (k === 'value') continue;
    const v = msg[k];
    process.env['__OW_' + k.toUpperCase()] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  if (typeof msg.lambda_trace_id === 'string') process.env._X_AMZN_TRACE_ID = msg.lambda_trace_id;
  let r;
  try {
    r = handler(msg.value);
  } catch (e) {
    console.error(e);
    return { __owl_developer_error: `An error has occurred: ${e}` };
  }
  try {
    r = await r;
  } catch (e) {
    return e ? { error: serializeError(e) } : { error: {} };
  }
  return r === undefined ? {} : r;
}

async function start() {
  const code = process.env.OWL_ACTION_CODE;
  const main = process.env.OWL_ACTION_MAIN || 'main';
  let handler;
  try {
    process.chdir(fs.statSync(code).isDirectory() ? code : path.dirname(code));
    handler = await load(code, main);
  } catch (e) {
    console.error('Error during initialization:', e);
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    send({ ok: false, error: initError(e) });
    process.exit(1);
  }
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  send({ ok: true });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      send({ __owl_developer_error: `An error has occurred: ${e}` });
      continue;
    }
    const result = await run(handler, msg);
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    send(result);
  }
  process.exit(0);
}

start();
