/**
 * Work to do before Lambda shuts an instance down (data capture's last batch). Lambda sends the runtime SIGTERM
 * before a shutdown only when some extension is registered, and this project ships none (Powertools is bundled, not
 * a layer with an extension). So this registers an internal extension that subscribes to no event: Lambda then
 * sends SIGTERM and gives the runtime up to 500 ms before SIGKILL (docs/capture.md, "When batches are written").
 * The extension's `event/next` call is held open by Lambda and never answered; its socket is unreferenced so that it
 * never keeps a process alive by itself.
 */
import { request, type IncomingMessage } from 'node:http';

/** Name of the internal extension (any name: only external extensions must match a file in /opt/extensions). */
export const SHUTDOWN_EXTENSION_NAME = 'onnx-serverless-shutdown';

const EXTENSIONS_API = '/2020-01-01/extension';

/** What {@link onLambdaShutdown} reports. */
export interface ShutdownHooks {
  /** The extension could not be registered: SIGTERM may not come (the instance's last batch may be lost). */
  readonly unregistered?: (reason: string) => void;
}

function call(
  runtimeApi: string,
  method: 'POST' | 'GET',
  path: string,
  headers: Record<string, string>,
  body?: string,
  hold = false,
): Promise<IncomingMessage> {
  const [host, port] = runtimeApi.split(':');
  return new Promise((resolve, reject) => {
    const outgoing = request({ host, port: Number(port ?? 80), method, path, headers }, resolve);
    outgoing.on('error', reject);
    // The held `next` call must not keep the process alive on its own (tests, a runtime ending on its own).
    if (hold) outgoing.on('socket', (socket) => socket.unref());
    outgoing.end(body);
  });
}

/**
 * Runs `work` on SIGTERM, then exits; and registers the internal extension that makes Lambda send SIGTERM.
 * Resolves once registered (or not: `hooks.unregistered` says why; `work` still runs on a SIGTERM that comes).
 * @example await onLambdaShutdown(config.lambdaRuntimeApi, () => runtime.capture.flush());
 */
export async function onLambdaShutdown(
  runtimeApi: string,
  work: () => Promise<unknown>,
  hooks: ShutdownHooks = {},
): Promise<void> {
  process.once('SIGTERM', () => {
    // Exit whatever the work did: a failed last write must not leave the instance waiting for SIGKILL.
    void work()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  });
  try {
    const registered = await call(
      runtimeApi,
      'POST',
      `${EXTENSIONS_API}/register`,
      { 'Lambda-Extension-Name': SHUTDOWN_EXTENSION_NAME, 'content-type': 'application/json' },
      JSON.stringify({ events: [] }),
    );
    registered.resume();
    const id = registered.headers['lambda-extension-identifier'];
    if (registered.statusCode !== 200 || typeof id !== 'string') {
      hooks.unregistered?.(`the Extensions API answered ${registered.statusCode} to the registration`);
      return;
    }
    // Ready: Lambda holds this call until the shutdown (an extension with no events is never sent one).
    call(runtimeApi, 'GET', `${EXTENSIONS_API}/event/next`, { 'Lambda-Extension-Identifier': id }, undefined, true)
      .then((response) => response.resume())
      .catch(() => undefined);
  } catch (error) {
    hooks.unregistered?.(`the Extensions API is unreachable: ${(error as Error).message}`);
  }
}
