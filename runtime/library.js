// library.js — JS functions the runtime's C code imports (--js-library).
mergeInto(LibraryManager.library, {
  // The function table's size, reported in acks: every loaded patch
  // version keeps its table slots (dlclose frees nothing).
  rt_js_table_size: function () { return wasmTable.length; },
});
