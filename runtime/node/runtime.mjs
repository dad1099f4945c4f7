// runtime.mjs — a headless patchbay runtime in node: the same wasm and the
// same host (../host.js) as the browser's Web Worker, wired with node's
// file system for the wasm binary and the `ws` package for the socket.
//
//   import { joinRoom } from './runtime.mjs';
//   const rt = await joinRoom(link, { name: 'ci-1' });
//   rt.on('commit', (c) => ...);  rt.call('ggg', 10);  rt.close();
//
// The wasm runtime is found at opts.runtimeJs, else $PB_RUNTIME_JS, else
// ../pb_runtime.cjs next to this folder (the installed layout,
// <build>/runtime/).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { RuntimeHost, newDeviceId, parseLink } from '../host.js';
import { fileStore, stateDir } from './store.mjs';

const require = createRequire(import.meta.url);

export { newDeviceId, parseLink };

export function runtimeJsPath(opts = {}) {
  return opts.runtimeJs || process.env.PB_RUNTIME_JS ||
         fileURLToPath(new URL('../pb_runtime.cjs', import.meta.url));
}

// Loads the wasm runtime: {createRuntime, moduleArgs} for RuntimeHost.
export function loadRuntime(opts = {}) {
  const js = runtimeJsPath(opts);
  let createRuntime, wasmBinary;
  try {
    createRuntime = require(js);
    wasmBinary = readFileSync(js.replace(/\.c?js$/, '.wasm'));
  } catch (e) {
    throw new Error(`cannot load the wasm runtime ${js}: ${e.message} ` +
                    '(build it, or set PB_RUNTIME_JS)');
  }
  return { createRuntime, moduleArgs: { wasmBinary } };
}

function defaultWebSocket() {
  try {
    return require('ws');
  } catch {
    if (globalThis.WebSocket) return globalThis.WebSocket;
    throw new Error('no WebSocket: install the ws package (npm ci) or run node ' +
                    'with --experimental-websocket');
  }
}

// For wss: a WebSocket (the ws package's) that trusts the PEM CA in file
// ca (default $PATCHBAY_CA) besides the system's; unchanged without one.
function withCa(WS, ca = process.env.PATCHBAY_CA) {
  if (!ca) return WS;
  let pem;
  try {
    pem = readFileSync(ca);
  } catch (e) {
    throw new Error(`--ca ${ca}: ${e.message}`);
  }
  return class extends WS {
    constructor(url, protocols, options) { super(url, protocols, { ...options, ca: pem }); }
  };
}

// What a node runtime says about the machine it runs on (hello).
export function nodeDevice() {
  return { platform: `node ${process.versions.node} ${process.platform} ${process.arch}`,
           ram_bytes: os.totalmem(), cores: os.availableParallelism?.() ?? os.cpus().length };
}

// Joins the room of a join link as a runtime. opts: name, runtimeJs,
// WebSocket, limits, backoffMs, maxBackoffMs, pingEveryMs, connect (false:
// no socket; frames are fed with handle.receive), canvas {width, height},
// device (label and more; the machine's platform, memory and cores are
// filled in), deviceId (hello's device_id: give every runtime that takes
// this one's place the same), store (where the highest verified head per
// (key, room) is kept; default: files in opts.stateDir or store.mjs's
// default folder; null: nowhere), ca (a PEM file of a CA to trust for wss;
// default $PATCHBAY_CA). Resolves once the wasm is running (not once
// connected: listen for 'welcome' or use handle.waitFor). The handle is the
// RuntimeHost plus waitFor().
export async function joinRoom(link, opts = {}) {
  const { createRuntime, moduleArgs } = loadRuntime(opts);
  const host = new RuntimeHost({
    ...opts, link, createRuntime, moduleArgs, device: { ...nodeDevice(), ...opts.device },
    store: opts.store === undefined ? fileStore(stateDir(opts.stateDir)) : opts.store,
    WebSocket: opts.connect === false ? null : withCa(opts.WebSocket || defaultWebSocket(), opts.ca),
  });
  await host.start();
  // Resolves with the first event of type for which pred holds; rejects
  // after timeoutMs (default 20 s) or if the runtime closes.
  host.waitFor = (type, pred = () => true, timeoutMs = 20000) =>
    new Promise((resolve, reject) => {
      let off = () => {};
      const timer = setTimeout(() => {
        off();
        reject(new Error(`runtime ${opts.name || ''}: no ${type} event within ${timeoutMs} ms`));
      }, timeoutMs);
      off = host.on(type, (ev) => {
        if (!pred(ev)) return;
        clearTimeout(timer);
        off();
        resolve(ev);
      });
    });
  return host;
}
