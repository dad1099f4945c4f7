# The runtime's C files but loader.c (Emscripten's dynamic linker), for the
# wasm build (runtime/CMakeLists.txt) and the native one of the fuzz target
# (tests/runtime/native/), which brings a loader of its own.
set(PB_RUNTIME_C registry.c canvas.c session.c catchup.c head.c reload.c
    report.c expr.c device.c verifier.c rand.c)
list(TRANSFORM PB_RUNTIME_C PREPEND "${CMAKE_CURRENT_LIST_DIR}/")
