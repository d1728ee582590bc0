/** The one check, shared by every test that reads a client-facing error, that no server internals leaked. */

/** True when an error message shows server internals: a stack frame, a source location, or a server path. */
export function showsInternals(message: string): boolean {
  return /\n\s+at |\bat [\w.<>]+ \(|\/work\/|node_modules|onnxruntime_src|[\w-]+\.(?:ts|js|mjs|h|cc|cpp):\d+|\.data\/|\/tmp\//.test(
    message,
  );
}
