// post.js — appended inside the runtime's module factory: gives the host
// the function table, through which it calls vars by table index, and the
// stack pointer, which it restores after a trap (a trap unwinds the wasm
// stack without running any epilogue).
Module['wasmTable'] = wasmTable;
Module['stackSave'] = stackSave;
Module['stackRestore'] = stackRestore;
