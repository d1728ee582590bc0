/** Lambda entry point `register`: S3 ObjectCreated events under `uploads/` become versions or rejections. */
import { readConfig } from './config.js';
import { createRegisterHandler } from './register-handler.js';
import { createObservability, loadTracer } from './observability.js';
import { createRuntime } from './runtime.js';

const config = readConfig();
const service = 'register';
const observability = createObservability(
  service,
  config.functionName !== undefined,
  config.tracing ? await loadTracer(service) : undefined,
);

/** The handler Lambda calls. */
export const handler = createRegisterHandler(createRuntime(config, { telemetry: observability.telemetry }), observability);
