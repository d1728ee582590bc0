/** Lambda entry point `control`: the console page, health, server metadata, the OpenAPI document, the repository index. */
import { createControlHandler } from '../transport/http-handlers.js';
import { bootstrap } from '../wiring/bootstrap.js';

const { runtime, observability } = await bootstrap('control');

/** The handler Lambda calls. */
export const handler = createControlHandler(runtime, observability);
