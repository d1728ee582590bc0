/** Lambda entry point `control`: health, server metadata and the repository index. */
import { readConfig } from './config.js';
import { createControlHandler } from './http-handlers.js';
import { createObservability, loadTracer } from './observability.js';
import { createRuntime } from './runtime.js';

const config = readConfig();
const service = 'control';
const observability = createObservability(
  service,
  config.functionName !== undefined,
  config.tracing ? await loadTracer(service) : undefined,
);

/** The handler Lambda calls. */
export const handler = createControlHandler(createRuntime(config, { telemetry: observability.telemetry }), observability);
