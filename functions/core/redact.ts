/**
 * Client-safe error messages: native libraries (onnxruntime) quote their source locations, C++ signatures and
 * status prefixes in messages that reach users as refusal reasons and error bodies. One redaction, used where
 * such messages enter (the onnxruntime adapter) and where errors leave (the HTTP mapping).
 */

/** Longest error message sent to a client: messages may quote client input, which must not come back unbounded. */
export const MAX_ERROR_MESSAGE_CHARS = 4096;

// A source location such as `/onnxruntime_src/onnxruntime/core/providers/cpu/math/element_wise_ops.h:563` or
// `tensor.cc:57`, as native libraries put them in their messages; tested against single words, never searched for.
const SOURCE_LOCATION =
  /^(?:[A-Za-z]:\\|\/)?[\w.@+/\\-]*\.(?:h|hh|hpp|c|cc|cpp|cxx|ts|mts|cts|js|mjs|cjs|py|node|so)(?::\d+){1,2}$/;
// onnxruntime follows a source location with the function and the failed check, up to this, then the reason.
const FAILED_CHECK = ' was false. ';
// A C++ function signature, e.g. `virtual OrtValue* onnxruntime::OpKernelContext::OutputMLValue(int, const T&) `.
const NATIVE_SIGNATURE =
  /(?:\b(?:virtual|static|inline)\s+){0,2}(?:[\w:<>]{0,99}[\w>][*&]{0,2}\s+)?\w{1,100}(?:<[^<>()]{0,100}>)?(?:::~?\w{1,100}(?:<[^<>()]{0,100}>)?){1,8}\([^()]{0,300}\)(?:::<lambda\(\)>)?(?:\s*const)?\s*/g;
// onnxruntime's status prefix: `[ONNXRuntimeError] : 1 : FAIL : `.
const NATIVE_STATUS = /\[ONNXRuntimeError\] : \d+ : \w+ : /g;
// A source location glued to the text before it, with the C++ function that follows, e.g.
// `failed:/onnxruntime_src/.../model_load_utils.h:46 void onnxruntime::...::ValidateOpsetForDomain(...) `.
const GLUED_SOURCE_LOCATION =
  /(?<=[^\s\w./-])\/[\w./-]{1,300}\.(?:cc|cpp|cxx|c|h|hpp):\d{1,6}\s*(?:(?:[\w:<>~*&,]{1,100}\s+)?[\w:~]{1,200}::[\w~]{1,100}\([^)]{0,300}\)(?:::<lambda\(\)>)?(?:\s*const)?\s*)?/g;
// A JavaScript stack frame line.
const STACK_FRAME = /\n\s+at [^\n]*/g;

/** Removes source locations word by word (linear in the message, whatever it holds), with their failed checks. */
function removeSourceLocations(text: string): string {
  const parts = text.split(/(\s+)/);
  const kept: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const word = parts[i] ?? '';
    if (!SOURCE_LOCATION.test(word)) {
      kept.push(word);
      continue;
    }
    i++; // the whitespace after it
    const rest = parts.slice(i + 1, i + 400).join('');
    const newline = rest.indexOf('\n');
    const line = newline < 0 ? rest : rest.slice(0, newline);
    const check = line.indexOf(FAILED_CHECK);
    if (check < 0) continue;
    // Skip the words up to the end of the failed check.
    let consumed = 0;
    while (i + 1 < parts.length && consumed < check + FAILED_CHECK.length) consumed += (parts[++i] ?? '').length;
  }
  return kept.join('');
}

/**
 * A client-safe version of an error message: source locations, native function signatures and stack frames removed
 * (they say nothing a client can act on and reveal the server's layout), trailing whitespace trimmed, length
 * bounded. The message is cut before it is searched, so that a huge echoed name costs no more than a short one.
 * @example redactInternals("Status Message: /src/x.h:12 f() a was false. Bad shape") // "Status Message: Bad shape"
 */
export function redactInternals(message: string): string {
  const bounded =
    message.length <= 2 * MAX_ERROR_MESSAGE_CHARS ? message : message.slice(0, 2 * MAX_ERROR_MESSAGE_CHARS);
  const cleaned = removeSourceLocations(bounded.replace(STACK_FRAME, '').replace(GLUED_SOURCE_LOCATION, ' '))
    .replace(NATIVE_SIGNATURE, '')
    .replace(NATIVE_STATUS, '')
    .trimEnd();
  return cleaned.length <= MAX_ERROR_MESSAGE_CHARS ? cleaned : `${cleaned.slice(0, MAX_ERROR_MESSAGE_CHARS)}...`;
}
