/** Lambda entry point `register`: S3 ObjectCreated events under `uploads/` become versions or rejections. */
import { createRegisterHandler } from '../transport/register-handler.js';
import { bootstrap } from '../wiring/bootstrap.js';

const { runtime, observability } = await bootstrap('register');

/** The handler Lambda calls. */
export const handler = createRegisterHandler(runtime, observability);
