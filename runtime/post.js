// post.js — appended inside the runtime's module factory: gives the host
// the function table, through which it calls vars by table index.
Module['wasmTable'] = wasmTable;
